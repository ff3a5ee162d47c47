"""Genomics with the Titans memory: tokenizer, DNA data, the DNA language model, DNAClassifier."""
