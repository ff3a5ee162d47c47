"""Genomics with the Titans memory: tokenizer, DNA data, the DNA language model, DNAClassifier."""

__all__ = ["DNAClassifier", "DNATokenizer"]


def __getattr__(name):  # the classifier pulls in torch and Lightning: import on first use
    if name == "DNAClassifier":
        from genomics.classifier import DNAClassifier

        return DNAClassifier
    if name == "DNATokenizer":
        from genomics.tokenizer import DNATokenizer

        return DNATokenizer
    raise AttributeError(f"module 'genomics' has no attribute {name!r}")
