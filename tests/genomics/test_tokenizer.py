import pytest
import torch

from genomics.tokenizer import DNATokenizer
from titans_ts.errors import SequenceError

tok = DNATokenizer()


def test_ids_are_hyenadna_compatible():
    assert list(tok.encode("ACGTN")) == [7, 8, 9, 10, 11]
    assert list(tok.encode("AC", add_special_tokens=True)) == [0, 7, 8, 1]
    assert tok.vocab_size == 12 and tok.pad_id == 4


def test_lowercase_is_accepted():
    assert list(tok.encode("acgtn")) == list(tok.encode("ACGTN"))


def test_iupac_ambiguity_codes_map_to_n():
    assert set(tok.encode("RYSWKMBDHVryswkmbdhv")) == {11}


@pytest.mark.parametrize(
    "sequence, position, char", [("ACGXT", 4, "X"), ("AC GT", 3, " "), ("ACGTé", 5, "é"), ("-ACG", 1, "-")]
)
def test_other_characters_name_their_position(sequence, position, char):
    with pytest.raises(SequenceError, match=f"character {char!r} at position {position}"):
        tok.encode(sequence, name="sequence 5")


def test_empty_sequence_is_an_error():
    with pytest.raises(SequenceError, match="sequence 2: empty sequence"):
        tok.batch_encode(["ACGT", ""])


def test_variable_lengths_are_right_padded():
    ids, lengths = tok.batch_encode(["ACGT", "A", "acgtacg"])
    assert ids.shape == (3, 7) and lengths.tolist() == [4, 1, 7]
    assert ids[1, 1:].eq(4).all()
    assert tok.decode(ids[2]) == "ACGTACG"
    cut, cut_lengths = tok.batch_encode(["ACGTACGT"], max_length=5)
    assert cut.shape == (1, 5) and cut_lengths.tolist() == [5]
    assert cut.dtype == torch.int64


def test_reverse_complement_ids_swap_pairs_and_reverse():
    from genomics.tokenizer import reverse_complement_ids

    assert tok.decode(reverse_complement_ids(tok.encode("AACGTN"))) == "NACGTT"
    assert tok.decode(reverse_complement_ids(tok.encode("rAcg"))) == "CGTN"  # IUPAC R is N, its own complement
    ids = tok.encode("GATTACA")
    assert list(reverse_complement_ids(reverse_complement_ids(ids))) == list(ids)


def test_random_view_crops_within_the_sequence_and_flips_strands():
    from genomics.tokenizer import reverse_complement_ids
    from genomics.training import RandomView

    ids = tok.encode("ACGTACGGTTAC" * 5)
    view = RandomView(crop=16, random_strand=True, seed=0)
    text, rc_text = tok.decode(ids), tok.decode(reverse_complement_ids(ids))
    strands = set()
    for _ in range(40):
        out = tok.decode(view(ids))
        assert len(out) == 16
        assert out in text or out in rc_text
        strands.add(out in text)
    assert strands == {True, False}  # both strands were drawn
    short = tok.encode("ACG")
    assert list(RandomView(crop=16)(short)) == list(short)  # shorter than the crop: kept whole
