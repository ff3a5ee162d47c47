from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genomics.data.files import read_csv, read_fasta, read_fasta_with_labels
from genomics.data.labelled import make_labelled, stratified_folds
from genomics.data.tasks import load_task, read_genomic_benchmarks_dir, resolve_task
from titans_ts.errors import DatasetNotFoundError, DataValidationError, DuplicateNamesWarning, SequenceError


def test_bundled_tasks_load_with_sorted_classes_and_cv_protocol(tmp_path):
    cohn = load_task("enhancer_cohn", data_root=tmp_path)
    assert cohn.protocol == "cv" and "cross-validation" in cohn.note
    assert len(cohn.labelled) == 6948 and cohn.labelled.classes == ["negative", "positive"]
    assert cohn.labelled.class_counts() == {"negative": 3474, "positive": 3474}
    nontata = load_task("nontata_promoters", data_root=tmp_path)
    assert nontata.labelled.class_counts() == {"negative": 4119, "positive": 4915}


def test_aliases_and_unknown_names():
    assert resolve_task("human_regulatory") == "human_ensembl_regulatory"
    assert resolve_task("ocr_ensembl") == "human_ocr_ensembl"
    with pytest.raises(DatasetNotFoundError, match="Did you mean 'enhancer_cohn'"):
        resolve_task("enhancer_con")


def test_unbundled_task_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"human_enhancers_ensembl --protocol official") as raised:
        load_task("enhancer_ensembl", data_root=tmp_path)
    assert "data_root= (CLI: the GENOMIC_BENCHMARKS_HOME environment variable)" in str(raised.value)


def _fake_download(calls):
    """Stands in for genomic_benchmarks.loc2seq.download_dataset: writes its layout under dest_path."""

    def download_dataset(name, dest_path, **_):
        calls.append(name)
        for split in ("train", "test"):
            for label, sequence in (("negative", "ACGT"), ("positive", "GGCC")):
                folder = Path(dest_path) / name / split / label
                folder.mkdir(parents=True)
                (folder / "0.txt").write_text(sequence)
        return Path(dest_path) / name

    return download_dataset


def test_official_protocol_downloads_with_genomic_benchmarks_into_its_layout(tmp_path, monkeypatch):
    import genomic_benchmarks.loc2seq

    calls = []
    monkeypatch.setattr(genomic_benchmarks.loc2seq, "download_dataset", _fake_download(calls))
    task = load_task("ocr_ensembl", data_root=tmp_path, download=True)
    assert calls == ["human_ocr_ensembl"] and task.protocol == "official"
    assert task.train.classes == ["negative", "positive"] and len(task.test) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["human_ocr_ensembl"]  # no scratch folder left
    load_task("ocr_ensembl", data_root=tmp_path, download=True)
    assert calls == ["human_ocr_ensembl"]  # on disk now: not fetched again
    assert resolve_task("drosophila_enhancers_stark") == "drosophila_enhancers_stark"  # a package-only task


def test_offline_download_says_where_to_put_the_data_and_leaves_nothing(tmp_path, monkeypatch):
    import genomic_benchmarks.loc2seq

    def offline(name, dest_path, **_):
        (Path(dest_path) / name / "train").mkdir(parents=True)  # a download that dies half-way
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(genomic_benchmarks.loc2seq, "download_dataset", offline)
    with pytest.raises(DatasetNotFoundError, match=r"could not download .*Offline\?.*human_ocr_ensembl/\{train,test\}"):
        load_task("ocr_ensembl", data_root=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_official_split_from_the_genomic_benchmarks_layout(tmp_path):
    for split, rows in (
        ("train", {"enhancer": ["ACGT", "AACC"], "ocr": ["GGTT"], "promoter": ["acgn"]}),
        ("test", {"enhancer": ["CCGG"], "ocr": ["TTAA"], "promoter": ["GATC"]}),
    ):
        for label, sequences in rows.items():
            folder = tmp_path / "human_ensembl_regulatory" / split / label
            folder.mkdir(parents=True)
            for i, sequence in enumerate(sequences):
                (folder / f"{i}.txt").write_text(sequence + "\n")
    task = load_task("human_regulatory", data_root=tmp_path)
    assert task.protocol == "official"
    assert task.train.classes == ["enhancer", "ocr", "promoter"]  # a three-class task
    assert task.train.labels.tolist() == [0, 0, 1, 2] and task.test.labels.tolist() == [0, 1, 2]
    assert task.train.sequences[3] == "ACGN"  # lowercase accepted, stored uppercase


def test_csv_with_variable_lengths_and_string_or_integer_labels(tmp_path):
    pd.DataFrame({"seq": ["ACGT", "A", "GGGGGGGG"], "label": ["b", "a", "b"]}).to_csv(tmp_path / "s.csv", index=False)
    data = read_csv(tmp_path / "s.csv")
    assert data.classes == ["a", "b"] and data.labels.tolist() == [1, 0, 1]
    pd.DataFrame({"seq": ["ACGT", "A", "GG"], "label": [10, 2, 2]}).to_csv(tmp_path / "i.csv", index=False)
    ints = read_csv(tmp_path / "i.csv")
    assert ints.classes == [2, 10] and ints.labels.tolist() == [1, 0, 0]  # numeric order, not "10" < "2"
    # a file headed Sequence,Class reads the same (the columns' usual other names, any case)
    pd.DataFrame({"Sequence": ["ACGT", "A"], "class": [10, 2]}).to_csv(tmp_path / "named.csv", index=False)
    named = read_csv(tmp_path / "named.csv")
    assert named.sequences == ["ACGT", "A"] and named.classes == [2, 10]
    pd.DataFrame({"dna_seq": ["ACGT"], "label": ["a"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['seq'\].*'seq' \(or sequence\)"):
        read_csv(tmp_path / "other.csv")


def test_bad_sequences_and_labels_are_named(tmp_path):
    pd.DataFrame({"seq": ["ACGT", "ACXT"], "label": [0, 1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SequenceError, match=r"sequence 2: character 'X' at position 3"):
        read_csv(tmp_path / "bad.csv")
    pd.DataFrame({"seq": ["ACGT", ""], "label": [0, 1]}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(SequenceError, match="sequence 2: empty sequence"):
        read_csv(tmp_path / "empty.csv")
    pd.DataFrame({"sequences_": ["ACGT"], "ys": [0]}).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['seq', 'label'\]"):
        read_csv(tmp_path / "cols.csv")
    with pytest.raises(DataValidationError, match="2 sequences but 1 labels"):
        make_labelled(["ACGT", "AC"], ["x"])


def test_fasta_with_labels(tmp_path):
    (tmp_path / "s.fa").write_text(">one desc\nACGT\nAC\n>two\nggnn\n")
    pd.DataFrame({"name": ["two", "one"], "label": ["neg", "pos"]}).to_csv(tmp_path / "labels.csv", index=False)
    data = read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "labels.csv")
    assert data.sequences == ["ACGTAC", "GGNN"] and [data.classes[i] for i in data.labels] == ["pos", "neg"]
    assert data.label_names() == ["pos", "neg"]
    with pytest.raises(DataValidationError, match="no label for record 'two'.*the labels name e.g. 'one'"):
        read_fasta_with_labels(tmp_path / "s.fa", {"one": "pos"})
    # spaces inside a sequence line are layout; a bad character is named by record as well as by number
    (tmp_path / "blocks.fa").write_text(">one\nACGTACGTAC GTACG\n>two\nAC-GT\n")
    with pytest.raises(SequenceError, match=r"blocks.fa, sequence 2 \('two'\): character '-' at position 3"):
        read_fasta_with_labels(tmp_path / "blocks.fa", ["a", "b"])
    assert read_fasta(tmp_path / "blocks.fa")[0] == ("one", "ACGTACGTACGTACG")
    repeated = pd.DataFrame({"name": ["two", "one", "two"], "label": ["neg", "pos", "neg"]})
    repeated.to_csv(tmp_path / "repeated.csv", index=False)  # the same label twice: fine
    assert read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "repeated.csv").label_names() == ["pos", "neg"]
    repeated.assign(label=["neg", "pos", "pos"]).to_csv(tmp_path / "conflict.csv", index=False)
    with pytest.raises(DataValidationError, match=r"'two' has two labels, 'neg' \(row 2\) and 'pos' \(row 4\)"):
        read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "conflict.csv")
    (tmp_path / "twice.fa").write_text(">one\nACGT\n>two\nGGCC\n>one\nTTAA\n")  # two records named 'one'
    with pytest.warns(DuplicateNamesWarning, match=r"twice.fa \(each takes the one label of its name\): 1 name"):
        data = read_fasta_with_labels(tmp_path / "twice.fa", tmp_path / "labels.csv")
    assert data.label_names() == ["pos", "neg", "pos"]


def test_stratified_folds_and_a_class_with_a_single_sample():
    data = make_labelled(["ACGT"] * 10 + ["GGCC"], ["a"] * 5 + ["b"] * 5 + ["c"])
    assert data.class_counts() == {"a": 5, "b": 5, "c": 1}
    with pytest.raises(DataValidationError, match=r"\{'c': 1\} have fewer sequences than folds=5"):
        stratified_folds(data, folds=5)
    balanced = make_labelled(["ACGT"] * 20, ["a", "b"] * 10)
    folds = stratified_folds(balanced, folds=5, seed=0)
    assert len(folds) == 5
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(20))
    assert all(np.bincount(balanced.labels[test]).tolist() == [2, 2] for _, test in folds)
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in stratified_folds(balanced, 5, seed=0)]


def test_genomic_benchmarks_dir_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_genomic_benchmarks_dir(tmp_path, "train")


def test_rna_sequences_are_warned_about_once_each(monkeypatch):
    """U (uracil) is read as N by the DNA tokenizer: a warning names the source, how many and the first; the same
    sequences checked again (a CV fold) are not warned about twice, new ones are."""
    import warnings

    import genomics.data.labelled as data
    from titans_ts.errors import UracilWarning

    monkeypatch.setattr(data, "_URACIL_WARNED", set())
    sequences = ["ACGT", "ACGU", "acgu", "GGCC"]
    with pytest.warns(UracilWarning, match=r"my.csv: 2 of 4 sequence\(s\) hold U .*the first is sequence 2"):
        data.make_labelled(sequences, ["a", "b", "a", "b"], source="my.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UracilWarning)
        data.make_labelled(sequences[1:3], ["a", "b"], source="the training data")  # a fold of the same
        data.make_labelled(["ACGT", "GGCC"], ["a", "b"])  # no U
    with pytest.warns(UracilWarning, match="1 of 1"):
        data.make_labelled(["UUUA"], ["a"], classes=["a", "b"])


@pytest.mark.parametrize("missing", ["NA", "N/A", "NaN", "null", "None", ""])
def test_a_missing_label_is_an_error_in_both_readers(tmp_path, missing):
    """R's write.csv writes a missing label as NA: it is no label (not a class "NA"), in a sequence CSV as in a
    FASTA's labels file, and a sequence called NA (bases N, A) is still a sequence."""
    (tmp_path / "s.csv").write_text(f"seq,label\nNA,0\nACGT,{missing}\nGGCC,1\n")
    with pytest.raises(DataValidationError, match="sequence 2 has no label"):
        read_csv(tmp_path / "s.csv")
    (tmp_path / "s.fa").write_text(">a\nNA\n>b\nACGT\n>c\nGGCC\n")
    (tmp_path / "labels.csv").write_text(f"name,label\na,0\nb,{missing}\nc,1\n")
    with pytest.raises(DataValidationError, match=r"sequence 2 \('b'\) has no label"):
        read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "labels.csv")
    (tmp_path / "ints.csv").write_text("seq,label\nNA,0\nACGT,1\nGGCC,1\n")
    data = read_csv(tmp_path / "ints.csv")
    assert data.classes == [0, 1] and data.sequences[0] == "NA"  # integer labels stay integers
    assert read_csv(tmp_path / "ints.csv").classes == read_fasta_with_labels(tmp_path / "s.fa", [0, 1, 1]).classes


def test_labels_are_stripped_of_surrounding_whitespace_in_both_readers(tmp_path):
    (tmp_path / "s.csv").write_text('seq,label\nACGT,positive\nGGCC,"positive "\nAAAA, negative\n')
    assert read_csv(tmp_path / "s.csv").label_names() == ["positive", "positive", "negative"]
    (tmp_path / "i.csv").write_text("seq,label\nACGT, 2 \nGGCC,10\n")
    assert read_csv(tmp_path / "i.csv").classes == [2, 10]  # numbers, in numeric order
    (tmp_path / "s.fa").write_text(">a\nACGT\n>b\nGGCC\n>c\nAAAA\n")
    (tmp_path / "labels.csv").write_text('name,label\na,positive\n b ,"positive "\nc,negative \n')
    data = read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "labels.csv")
    assert data.classes == ["negative", "positive"] and data.label_names() == ["positive", "positive", "negative"]


def test_a_labels_file_is_read_by_its_header_names(tmp_path):
    """The name and label columns are found by their headers (in a two-column file, the one named tells the other;
    neither named: in order); otherwise refused, naming the columns."""
    (tmp_path / "s.fa").write_text(">one\nACGT\n>two\nGGCC\n")
    tables = {
        "batch.csv": "name,batch,label\none,b1,pos\ntwo,b1,neg\n",
        "swapped.csv": "label,name\npos,one\nneg,two\n",
        "aliases.csv": "Class,ID\npos,one\nneg,two\n",
        "unnamed.csv": "record_name,kind\none,pos\ntwo,neg\n",
        "seq_id.csv": "seq_id,label\none,pos\ntwo,neg\n",  # one header named: the other column is the other
        "cls.csv": "id,cls\none,pos\ntwo,neg\n",
        "first_named.csv": "label,seq_id\npos,one\nneg,two\n",
        "id_and_name.csv": "id,name,label\n1,one,pos\n2,two,neg\n",  # the name, not a running id
    }
    for file, text in tables.items():
        (tmp_path / file).write_text(text)
        assert read_fasta_with_labels(tmp_path / "s.fa", tmp_path / file).label_names() == ["pos", "neg"], file
    (tmp_path / "three.csv").write_text("name,batch,kind\none,b1,pos\ntwo,b1,neg\n")
    with pytest.raises(DataValidationError, match=r"three.csv: cannot tell .*\['name', 'batch', 'kind'\]"):
        read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "three.csv")


def test_a_sequence_table_and_a_labels_file_find_columns_by_the_same_alias_rule(tmp_path):
    """Headed y,Label, a sequence CSV read y (the first column with any other name) and a labels file read Label (the
    first name any column has); both now take the names in their order: label before y, sequence before dna."""
    from genomics.data.files import find_column, label_columns
    from genomics.data.labelled import LABEL_NAMES

    (tmp_path / "s.csv").write_text("dna,y,Sequence,Label\nAAAA,0,ACGT,pos\nCCCC,1,GGCC,neg\n")
    data = read_csv(tmp_path / "s.csv")
    assert data.sequences == ["ACGT", "GGCC"] and data.label_names() == ["pos", "neg"]
    (tmp_path / "s.fa").write_text(">one\nACGT\n>two\nGGCC\n")
    (tmp_path / "labels.csv").write_text("name,y,Label\none,0,pos\ntwo,1,neg\n")
    assert read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "labels.csv").label_names() == ["pos", "neg"]
    columns = ["name", "y", "Label"]
    assert find_column(columns, "label", "label", LABEL_NAMES) == label_columns(columns, "x")[1] == "Label"
    assert find_column(["seq", "y", "label"], "label", "label", LABEL_NAMES) == "label"  # the default itself first


def test_a_csv_to_predict_takes_its_names_from_the_columns_a_labels_file_does(tmp_path):
    """Only a column headed 'name' named the sequences of a CSV to predict (id,seq gave 1, 2, ...); it now takes
    the name column the labels reader does (NAME_NAMES, any case, in their order: name before id)."""
    from genomics.data.files import read_unlabelled_csv

    for header, names in [("id", ["foo", "bar"]), ("Record", ["foo", "bar"]), ("other", None)]:
        (tmp_path / "in.csv").write_text(f"{header},seq\nfoo,ACGT\nbar,GGCC\n")
        assert read_unlabelled_csv(tmp_path / "in.csv") == (["ACGT", "GGCC"], names), header
    (tmp_path / "both.csv").write_text("id,seq,name\n1,ACGT,foo\n2,GGCC,bar\n")
    assert read_unlabelled_csv(tmp_path / "both.csv")[1] == ["foo", "bar"]


def test_gzip_is_told_by_its_first_bytes_and_binary_files_are_named(tmp_path):
    """A gzipped FASTA or CSV without .gz, and a plain file named .gz, read as what they hold; a workbook or
    other binary file is one clear error naming the file, not a UnicodeDecodeError."""
    import gzip

    fasta, table = ">a\nACGT\n>b\nGGCC\n", "seq,label\nACGT,x\nGGCC,y\n"
    (tmp_path / "zipped.fa").write_bytes(gzip.compress(fasta.encode()))
    (tmp_path / "plain.fa.gz").write_text(fasta)
    (tmp_path / "zipped.csv").write_bytes(gzip.compress(table.encode()))
    (tmp_path / "plain.csv.gz").write_text(table)
    for file in ("zipped.fa", "plain.fa.gz"):
        assert read_fasta(tmp_path / file) == [("a", "ACGT"), ("b", "GGCC")]
    for file in ("zipped.csv", "plain.csv.gz"):
        assert read_csv(tmp_path / file).label_names() == ["x", "y"]
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    (tmp_path / "blob.fa").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin.fa").write_bytes(b">caf\xe9\nACGT\n")
    (tmp_path / "late.fa").write_bytes(b">a\n" + b"ACGT\n" * 2000 + b">caf\xe9\nACGT\n")  # past the first block
    cases = [
        (read_fasta, "book.xlsx", r"book.xlsx: not a text FASTA/CSV file \(it looks like a zip archive.*xlsx"),
        (read_csv, "book.xlsx", r"not a text FASTA/CSV file \(it looks like a zip archive"),
        (read_fasta, "blob.fa", r"blob.fa: not a text FASTA/CSV file \(it looks like binary data\): export it"),
        (read_fasta, "latin.fa", r"latin.fa, line 1: not UTF-8 text .*save the file as UTF-8"),
        (read_fasta, "late.fa", r"late.fa, line 2002: not UTF-8 text"),
    ]
    for read, file, message in cases:
        with pytest.raises(DataValidationError, match=message):
            read(tmp_path / file)


def test_tables_are_told_by_suffix_in_any_case_and_tab_separated_ones_are_read():
    """TRAIN.CSV, train.Csv.GZ, train.tsv and a .txt table are tables, not FASTA; tab-separated tables and labels
    files are read with their separator."""
    import gzip

    from genomics.data.files import is_csv

    folder = Path.cwd()
    tab, comma = "seq\tlabel\nACGT\tx\nGGCC\ty\n", "seq,label\nACGT,x\nGGCC,y\n"
    (folder / "TRAIN.CSV").write_text(comma)
    (folder / "train.Csv.GZ").write_bytes(gzip.compress(comma.encode()))
    (folder / "train.tsv").write_text(tab)
    (folder / "train.txt").write_text(tab)
    (folder / "reads.txt").write_text(">a\nACGT\n")
    for file in ("TRAIN.CSV", "train.Csv.GZ", "train.tsv", "train.txt"):
        assert is_csv(folder / file), file
        assert read_csv(folder / file).label_names() == ["x", "y"], file
    assert not is_csv(folder / "reads.txt") and not is_csv(folder / "reads.FA")
    (folder / "s.fa").write_text(">a\nACGT\n>b\nGGCC\n")
    (folder / "labels.tsv").write_text("name\tlabel\na\tx\nb\ty\n")
    assert read_fasta_with_labels(folder / "s.fa", folder / "labels.tsv").label_names() == ["x", "y"]


def test_small_input_mistakes_get_messages_that_say_what_to_do(tmp_path):
    """Plain class values (not np.int64(0)); the read_csv function named for column names; FASTQ named as such;
    alignment gaps named as such."""
    with pytest.raises(DataValidationError) as raised:
        make_labelled(["ACGT"], [np.int64(5)], classes=list(np.array([0, 1])))
    assert str(raised.value).endswith("label 5 is not one of the classes [0, 1].")
    pd.DataFrame({"dna_seq": ["ACGT"], "label": ["a"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataValidationError, match=r"genomics.data.read_csv\(path, sequence_column=\.\.\."):
        read_csv(tmp_path / "other.csv")
    (tmp_path / "reads.fq").write_text("@read1\nACGT\n+\nIIII\n")
    with pytest.raises(DataValidationError, match=r"reads.fq: line 1 starts with '@': .*FASTQ.*Convert it to FASTA"):
        read_fasta(tmp_path / "reads.fq")
    with pytest.raises(SequenceError, match=r"alignment gaps: remove them"):
        make_labelled(["AC--GT"], ["a"])
    with pytest.raises(SequenceError) as raised:
        make_labelled(["AC-XGT"], ["a"])
    assert "gaps" not in str(raised.value)  # other characters too: not only gaps


def test_a_model_width_the_heads_do_not_divide_names_the_widths_that_work():
    from genomics.model import DNAModelConfig
    from titans_ts.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dim=6 must be a multiple of heads=4 .*use e.g. dim=4 or dim=8\.$"):
        DNAModelConfig(dim=6)
    with pytest.raises(ConfigError, match=r"use e.g. dim=4 or dim=8\.$"):
        DNAModelConfig(dim=3)


def test_a_txt_fasta_may_start_with_a_blank_line_or_a_comment(tmp_path):
    """is_csv looked at the first raw line only: a .txt FASTA starting with a blank line was read as a table."""
    from genomics.data.files import is_csv

    (tmp_path / "blank.txt").write_text("\n>r1\nACGT\n")
    (tmp_path / "comment.txt").write_text("; from the lab\n>r1\nACGT\n")
    (tmp_path / "table.txt").write_text("\nseq,label\nACGT,a\n")
    assert not is_csv(tmp_path / "blank.txt") and not is_csv(tmp_path / "comment.txt")
    assert is_csv(tmp_path / "table.txt")
    assert read_fasta(tmp_path / "comment.txt") == read_fasta(tmp_path / "blank.txt") == [("r1", "ACGT")]


def test_a_table_pandas_decompresses_itself_still_reads(tmp_path):
    """A .csv.bz2 loaded before gzip was told by its bytes; then it was called binary data."""
    import bz2

    (tmp_path / "t.csv.bz2").write_bytes(bz2.compress(b"seq,label\nACGT,x\nGGCC,y\n"))
    assert read_csv(tmp_path / "t.csv.bz2").label_names() == ["x", "y"]
    from genomics.api import load_labelled

    # told a table by its name under the compression (it was read as FASTA: "not UTF-8 text, save it as UTF-8")
    assert load_labelled(str(tmp_path / "t.csv.bz2"), None).label_names() == ["x", "y"]
    (tmp_path / "s.fa.xz").write_bytes(b"\xfd7zXZ\x00 compressed")
    with pytest.raises(DataValidationError, match=r"s.fa.xz: a FASTA file compressed as .xz is not read here; gzip is"):
        read_fasta(tmp_path / "s.fa.xz")


def test_a_table_is_told_from_the_start_of_its_file_even_past_the_bytes_sniffed(tmp_path):
    """FASTA or table, the separator and the UTF-8 check come from the file's first bytes, read once; a first
    line that starts past those bytes is still found, and a table that is not UTF-8 is named with its line."""
    from genomics.data.files import SNIFF_BYTES, is_csv

    blank = "\n" * (SNIFF_BYTES + 1)
    (tmp_path / "reads.txt").write_text(blank + ">r1\nACGT\n")
    (tmp_path / "table.txt").write_text(blank + "seq\tlabel\nACGT\tx\nGGCC\ty\n")
    (tmp_path / "latin.csv").write_bytes(b"seq,label\nACGT,caf\xe9\n")
    assert not is_csv(tmp_path / "reads.txt") and is_csv(tmp_path / "table.txt")
    assert read_csv(tmp_path / "table.txt").label_names() == ["x", "y"]
    with pytest.raises(DataValidationError, match=r"latin.csv, line 2: not UTF-8 text .*save the file as UTF-8"):
        read_csv(tmp_path / "latin.csv")


def test_rows_ending_with_a_separator_are_read_as_their_header_says_and_a_repeated_header_is_refused(tmp_path):
    """Spreadsheets write `ACGT,0,`: pandas took the first column as the row index and shifted every column one
    place left (the labels read as sequences, the sequences as names)."""
    from genomics.data.files import read_labels_file, read_unlabelled_csv

    (tmp_path / "trailing.csv").write_text("seq,label\n ACGT ,0,\nTTTT,1,\n")  # a padded cell: its bases
    data = read_csv(tmp_path / "trailing.csv")
    assert list(data.sequences) == ["ACGT", "TTTT"] and list(data.labels) == [0, 1]
    (tmp_path / "named.csv").write_text("name,seq\r\nr1,ACGT,\r\nr2,TTTT,\r\n")
    assert read_unlabelled_csv(tmp_path / "named.csv") == (["ACGT", "TTTT"], ["r1", "r2"])
    (tmp_path / "labels.tsv").write_text("name\tlabel\none\tpos\t\ntwo\tneg\t\n")
    assert read_labels_file(tmp_path / "labels.tsv") == {"one": "pos", "two": "neg"}
    (tmp_path / "extra.csv").write_text("seq,label\nACGT,0,\nTTTT,1,oops\n")
    with pytest.raises(DataValidationError, match=r"extra.csv: row 3 has more fields than the header has column"):
        read_csv(tmp_path / "extra.csv")
    (tmp_path / "twice.csv").write_text("seq,label,label\nACGT,0,1\nTTTT,1,0\n")
    import bz2

    (tmp_path / "twice.csv.bz2").write_bytes(bz2.compress((tmp_path / "twice.csv").read_bytes()))
    for name in ("twice.csv", "twice.csv.bz2"):  # a compressed header too
        with pytest.raises(DataValidationError, match=r"names column\(s\) \['label'\] more than once"):
            read_csv(tmp_path / name)
    # row names in front, the header without a field for them (R's write.table): read as before, by the header
    (tmp_path / "r.tsv").write_text("seq\tlabel\nr1\tACGT\t0\nr2\tTTTT\t1\n")
    assert list(read_csv(tmp_path / "r.tsv").sequences) == ["ACGT", "TTTT"]


def test_labels_as_a_dict_a_mix_of_kinds_or_the_text_of_a_missing_value_are_refused_not_made_classes():
    """A dict's list is its keys (every sequence its own class); 0 and '1' made three classes [0, 1, '1']; the
    text 'nan' (str of a NaN) became a class, where the file readers read it as no label."""
    sequences = ["ACGT", "TTTT", "GGGG", "CCCC"]
    with pytest.raises(DataValidationError, match=r"got a dict: give a list \(its values in the sequences' order\)"):
        make_labelled(sequences, dict(enumerate([0, 1, 1, 0])))
    with pytest.raises(DataValidationError, match=r"got a set"):
        make_labelled(sequences, {0, 1, 2, 3})
    from genomics.classifier import DNAClassifier

    with pytest.raises(DataValidationError, match=r"the labels mix kinds: a number \(0\), text \('1'\)"):
        DNAClassifier(pretrained=False, dim=16, layers=1, heads=2, epochs=1).fit(sequences, [0, 1, 0, "1"])
    with pytest.raises(DataValidationError, match=r"the labels mix kinds: True or False \(True\), a number \(1\)"):
        DNAClassifier(pretrained=False, dim=16, layers=1, heads=2, epochs=1).fit(sequences, [True, False, 1, 0])
    for missing in ("nan", "NA", " None ", ""):
        with pytest.raises(DataValidationError, match=r"sequence 3 has no label"):
            make_labelled(sequences, ["neg", "pos", missing, "pos"])
    assert make_labelled(sequences, [np.int64(1), 0, 1.0, 0]).classes == [0, 1]  # numbers of any type: one kind
    assert make_labelled(sequences, ["none", "pos", "none", "pos"]).classes == ["none", "pos"]  # exact case
    scored = make_labelled(sequences, ["NA", "pos", "NA", "pos"], known=["NA", "pos"])  # a fitted model's own class
    assert scored.classes == ["NA", "pos"]


def test_continuous_labels_are_refused_and_a_column_of_labels_is_read_as_a_list():
    """fit(X, np.random.rand(n)) trained an n-class model (each value its own class); y.reshape(-1, 1) was refused
    as one-hot rows; fit(X, None) said to wrap one sequence in a list."""
    from genomics.classifier import DNAClassifier

    sequences = ["ACGT", "TTTT", "GGGG", "CCCC"]
    tiny = DNAClassifier(pretrained=False, dim=16, layers=1, heads=2, epochs=1)
    with pytest.raises(DataValidationError, match=r"the labels are continuous numbers \(0.37, ...\)"):
        tiny.fit(sequences, np.array([0.37, 0.9, 0.1, 0.5]))
    assert make_labelled(sequences, [0.0, 1.0, 1.0, 0.0]).classes == [0, 1]  # whole numbers as floats: classes
    column = make_labelled(sequences, np.array([[0], [1], [1], [0]]))
    assert column.classes == [0, 1] and list(column.labels) == [0, 1, 1, 0]
    with pytest.raises(DataValidationError, match=r"expected a list of labels; got None\.$"):
        tiny.fit(sequences, None)
