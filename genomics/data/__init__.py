"""Labelled DNA sequences: GenomicBenchmarks tasks (bundled or on disk), CSV, FASTA + labels; CV folds.

Classes are always sorted by name, so class index i means the same thing in every run.

  labelled.py  LabelledSequences in memory, checked (make_labelled), their warnings; stratified_folds
  files.py     sequence tables, FASTA, labels files: columns found by header, a file's start sniffed first
  tasks.py     GenomicBenchmarks tasks: the bundled registry, official splits on disk, load_task
"""

from genomics.data.files import read_csv, read_fasta, read_fasta_with_labels
from genomics.data.labelled import LabelledSequences, make_labelled, stratified_folds
from genomics.data.tasks import TaskData, list_tasks, load_task

__all__ = [
    "LabelledSequences",
    "TaskData",
    "list_tasks",
    "load_task",
    "make_labelled",
    "read_csv",
    "read_fasta",
    "read_fasta_with_labels",
    "stratified_folds",
]
