"""The metrics against oracles: the real ``rouge`` and ``fuzzywuzzy`` packages, jieba, and plain
re-implementations of the SPEC's wording written here, on random and adversarial strings."""

from __future__ import annotations

import difflib
import re
import string
import sys
from collections import Counter

import pytest
from fuzzywuzzy import fuzz
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rouge import Rouge
from rouge import rouge_score as rouge_internals

from longbench.metrics import METRIC_NAMES, SampleScore, metric_function, score_sample
from longbench.metrics.code import code_sim, first_code_line, fuzz_ratio
from longbench.metrics.lcs import lcs_backtrack, lcs_rows, match_masks
from longbench.metrics.rouge import CALL_LIMIT_EN, RecursionLimitExceeded, rouge_l_f
from longbench.metrics.text import classification, count, qa_f1, retrieval, retrieval_zh
from longbench.tasks import all_tasks

# Text that stresses the metrics: sentence dots, whitespace runs, repeated words, CJK, punctuation.
WORDS = ["the", "a", "an", "cat", "Cat", "sat", "on", "mat", "猫", "坐在", "垫子上", "x", "1", "23"]
PIECES = [
    *WORDS,
    ".",
    " ",
    "  ",
    "\n",
    "\t",
    "..",
    " . ",
    ",",
    "!",
    "。",
    "，",
    "é",
    "\u3000",
    "\u2028",
    "'s",
]
texts = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
    st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join),
    st.text(max_size=60),
    st.text(alphabet=" .ab\n", max_size=40),
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def deep_stack():
    """Oracle ``rouge`` calls here must not hit Python's recursion limit unless a test says so."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    yield
    sys.setrecursionlimit(old)


def rouge_oracle(hypothesis: str, reference: str) -> float:
    """LongBench's ``rouge_score``: the package's ROUGE-L F, 0.0 on any exception."""
    try:
        return Rouge().get_scores([hypothesis], [reference], avg=True)["rouge-l"]["f"]
    except Exception:
        return 0.0


def rouge_ours(hypothesis: str, reference: str, call_limit: int | None) -> float:
    try:
        return rouge_l_f(hypothesis, reference, call_limit)
    except ValueError:
        return 0.0


# --- LCS --------------------------------------------------------------------------------------------


def backtrack_oracle(x: list[str], y: list[str]) -> tuple[set[str], int]:
    """The package's own table, walked by its rule, counting calls as its recursion makes them."""
    table = rouge_internals._lcs(x, y)
    i, j, calls, tokens = len(x), len(y), 1, set()
    while i > 0 and j > 0:
        calls += 1
        if x[i - 1] == y[j - 1]:
            tokens.add(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1, j] > table[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return tokens, calls


word_lists = st.lists(st.sampled_from("abcde"), max_size=30)


@FAST
@given(x=word_lists, y=word_lists)
@example(x=[], y=["a"]).via("empty side")
@example(x=["a", "b"] * 10, y=["b", "a"] * 10).via("ties everywhere")
def test_lcs_table_path_and_calls_match_the_package(x, y):
    masks = match_masks(y)
    rows = lcs_rows(x, masks, len(y))
    table = rouge_internals._lcs(x, y)
    for i in range(len(x) + 1):
        for j in range(len(y) + 1):
            assert (rows[i] & ((1 << j) - 1)).bit_count() == table[i, j]
    tokens, calls = lcs_backtrack(x, masks, len(y), rows)
    assert tokens == set(rouge_internals._recon_lcs(x, y)._ngrams)
    assert (tokens, calls) == backtrack_oracle(x, y)


# --- ROUGE-L ----------------------------------------------------------------------------------------


@FAST
@given(hypothesis=texts, reference=texts)
@example(hypothesis="", reference="a").via("empty prediction")
@example(hypothesis="a", reference="...").via("only dots")
@example(hypothesis=" . a", reference="  .b . a").via("whitespace-only sentence becomes the word ''")
@example(hypothesis="a b a b. b a", reference="b a b a. a b").via("repeated words")
def test_rouge_equals_the_rouge_package(hypothesis, reference):
    expected = rouge_oracle(hypothesis, reference)
    assert rouge_ours(hypothesis, reference, CALL_LIMIT_EN) == expected  # short: no overflow
    assert rouge_ours(hypothesis, reference, None) == expected


def test_rouge_raises_like_the_package_on_empty_text():
    for hypothesis, reference in [("", "a"), ("a", ""), ("...", "a"), ("a", "..")]:
        with pytest.raises(ValueError):
            Rouge().get_scores([hypothesis], [reference], avg=True)
        with pytest.raises(ValueError):
            rouge_l_f(hypothesis, reference)


def test_rouge_on_a_whitespace_sentence_matches_the_package():
    # "a. " has the sentence " ", which becomes the word "" on both sides and counts in the overlap
    assert rouge_l_f("a. ", "b. ") == Rouge().get_scores(["a. "], ["b. "], avg=True)["rouge-l"]["f"] > 0


def long_text(draw_words: list[str], dots: list[int]) -> str:
    words = list(draw_words)
    for position in dots:
        words[position % len(words)] += "."
    return " ".join(words)


@settings(max_examples=6, deadline=None)
@given(
    hyp=st.lists(st.sampled_from(WORDS[:8]), min_size=1000, max_size=1400),
    ref=st.lists(st.sampled_from(WORDS[:8]), min_size=200, max_size=300),
    dots=st.lists(st.integers(0, 2000), max_size=2),
)
def test_corrected_rouge_equals_the_package_with_a_deep_stack_on_long_inputs(hyp, ref, dots):
    hypothesis, reference = long_text(hyp, dots), " ".join(ref)
    assert rouge_ours(hypothesis, reference, None) == rouge_oracle(hypothesis, reference)


def test_reference_mode_raises_only_past_the_call_limit():
    reference = "w0"
    passing = " ".join(f"w{k}" for k in range(CALL_LIMIT_EN - 1))  # backtrack makes 991 calls
    failing = " ".join(f"w{k}" for k in range(CALL_LIMIT_EN))  # 992 calls
    assert rouge_l_f(passing, reference) == rouge_oracle(passing, reference) > 0
    with pytest.raises(RecursionLimitExceeded):
        rouge_l_f(failing, reference)
    assert rouge_l_f(failing, reference, None) == rouge_oracle(failing, reference) > 0


# --- code_sim ---------------------------------------------------------------------------------------


def difflib_fuzz_ratio(a: str, b: str) -> int:
    """fuzzywuzzy's ``fuzz.ratio`` forced onto its pure-Python path, whatever else is installed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fuzz, "SequenceMatcher", difflib.SequenceMatcher)
        return fuzz.ratio(a, b)


code_texts = st.one_of(
    st.text(alphabet="ab(){}; =\n#/`x", max_size=80),
    st.text(max_size=40),
    st.lists(st.sampled_from(["x = 1", "# c", "// c", "```py", "", "return x", "\n"]), max_size=6).map(
        "\n".join
    ),
)


@settings(max_examples=400, deadline=None)
@given(prediction=code_texts, answer=code_texts)
@example(prediction="", answer="").via("both empty: equal, so 100")
@example(prediction="a" * 300 + "b", answer="b" + "a" * 300).via("autojunk threshold")
def test_code_sim_equals_difflib_fuzzywuzzy(prediction, answer):
    line = first_code_line(prediction)
    assert fuzz_ratio(line, answer) == difflib_fuzz_ratio(line, answer)
    assert code_sim(prediction, answer) == difflib_fuzz_ratio(line, answer) / 100


def test_code_sim_first_line_rule():
    assert first_code_line("\n\n# comment\n```\nx = 1\ny") == "x = 1"
    assert first_code_line("a // b\n#") == ""
    assert code_sim("", "") == 1.0 and code_sim("", "x") == 0.0


def test_code_sim_ignores_python_levenshtein():
    pytest.importorskip("Levenshtein")
    # On this pair the Levenshtein-based fuzz.ratio and the difflib one disagree.
    a, b = "\t\tif ready_pipe == -1:", "\t\tloop = gobject.MainLoop()"  # a real lcc prediction
    assert fuzz.ratio(a, b) == 29  # fuzzywuzzy picked python-Levenshtein here
    assert fuzz_ratio(a, b) == round(100 * difflib.SequenceMatcher(None, a, b).ratio()) == 24


# --- qa_f1, classification, retrieval, count: plain readings of the SPEC -----------------------------


def spec_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def spec_normalize(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


@FAST
@given(prediction=texts, answer=texts)
@example(prediction="The cat, the mat!", answer="cat mat a").via("articles and punctuation")
def test_qa_f1_matches_the_spec(prediction, answer):
    assert qa_f1(prediction, answer) == pytest.approx(
        spec_f1(spec_normalize(prediction), spec_normalize(answer)), abs=1e-12
    )


def spec_classification(prediction: str, gold: str, classes: list[str]) -> float:
    found = [name for name in classes if name in prediction]
    for term in found:  # removing while iterating, as the SPEC says the reference does
        if term in gold and term != gold:
            found.remove(term)
    return 1.0 / len(found) if gold in found else 0.0


class_names = st.lists(
    st.sampled_from(["a", "b", "ab", "abc", "c", "bc", "Other", "Other entity"]), max_size=8
)


@FAST
@given(
    prediction=st.text(alphabet="abc Other entity", max_size=30),
    classes=class_names,
    gold=st.sampled_from(["abc", "ab", "Other entity", "c"]),
)
def test_classification_matches_the_spec(prediction, classes, gold):
    assert classification(prediction, gold, classes) == spec_classification(prediction, gold, classes)


def test_classification_skips_the_element_after_a_removed_one():
    # "b" is removed; the walk then skips "c" (a substring of the gold label that should also go),
    # so two matches remain and the score is 1/2, not 1.
    assert classification("abc", "abc", ["b", "c", "abc"]) == 0.5
    # here the skipped element is the gold label itself, and "c" after it is removed: 1.0
    assert classification("abc", "abc", ["b", "abc", "c"]) == 1.0


def spec_share(prediction: str, wanted: str) -> float:
    numbers = re.findall(r"\d+", prediction)
    return sum(number == wanted for number in numbers) / len(numbers) if numbers else 0.0


digits = st.text(alphabet="0123456789 Paragraph段落,", max_size=30)


@FAST
@given(prediction=digits, n=st.integers(0, 40))
def test_retrieval_and_count_match_the_spec(prediction, n):
    assert retrieval(prediction, f"Paragraph {n}") == spec_share(prediction, str(n))
    assert retrieval_zh(prediction, f"段落{n}") == spec_share(prediction, str(n))
    assert count(prediction, str(n)) == spec_share(prediction, str(n))


def test_retrieval_rejects_an_answer_without_a_paragraph():
    with pytest.raises(ValueError, match="paragraph"):
        retrieval("1", "no number here")


# --- Chinese ------------------------------------------------------------------------------------------

CN_PUNCTUATION_CODEPOINTS = (
    [0xFF01, 0xFF1F, 0xFF61, 0x3002, *range(0xFF02, 0xFF0E), 0xFF0F, *range(0xFF1A, 0xFF1F), 0xFF20]
    + [*range(0xFF3B, 0xFF41), *range(0xFF5B, 0xFF61), *range(0xFF62, 0xFF65), 0x3001, 0x3003]
    + [*range(0x300B, 0x3012), *range(0x3014, 0x3020), 0x3030, 0x303E, 0x303F, 0x2013, 0x2014]
    + [0x2018, 0x2019, *range(0x201B, 0x2020), 0x2026, 0x2027, 0xFE4F, 0x2E]
)  # transcribed from the reference metrics.py's cn_punctuation


def test_chinese_punctuation_is_the_reference_set():
    from longbench.metrics.chinese import _CN_PUNCTUATION

    assert sorted(map(ord, _CN_PUNCTUATION)) == sorted(CN_PUNCTUATION_CODEPOINTS)


zh_texts = st.one_of(
    st.lists(
        st.sampled_from(
            ["我们", "今天", "去", "北京大学", "。", "，", "《", "》", " ", "ABC", "1.5", "看看", "“", "”"]
        ),
        max_size=20,
    ).map("".join),
    st.text(alphabet="我们去北京大学看天气很好。，！？ ab.", max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(zh_texts, texts, st.text(max_size=40)))
@example(text="北京 大学\r\n2024年 AI-Lab_x.y %5 #1 & 你好！！").via("every jieba block kind")
def test_cut_equals_jieba_cut(text):
    import jieba

    from longbench.metrics.chinese import cut

    assert cut(text) == tuple(jieba.cut(text, cut_all=False))


@settings(max_examples=200, deadline=None)
@given(prediction=zh_texts, answer=zh_texts)
def test_qa_f1_zh_and_rouge_zh_match_jieba_oracles(prediction, answer):
    import jieba

    punctuation = set(string.punctuation) | {chr(c) for c in CN_PUNCTUATION_CODEPOINTS}

    def tokens(text):
        pieces = (
            "".join("".join(ch for ch in t.lower() if ch not in punctuation).split())
            for t in jieba.cut(text, cut_all=False)
        )
        return [p for p in pieces if p]

    assert metric_function("qa_f1_zh")(prediction, answer, None) == spec_f1(
        tokens(prediction), tokens(answer)
    )
    joined = " ".join(jieba.cut(prediction, cut_all=False)), " ".join(jieba.cut(answer, cut_all=False))
    assert score_sample("vcsum", prediction, [answer], None).score == rouge_oracle(*joined)


# --- score_sample -----------------------------------------------------------------------------------


def test_every_task_metric_is_known():
    assert {task.metric for task in all_tasks()} == set(METRIC_NAMES)
    with pytest.raises(ValueError, match="unknown metric"):
        metric_function("bleu")


def test_score_sample_takes_the_max_over_answers_and_cuts_first_lines():
    assert score_sample("triviaqa", "\n\nParis\nLondon is big", ["London", "Paris"], None) == SampleScore(
        1.0, False
    )
    assert score_sample("narrativeqa", "Paris\nLondon", ["London"], None).score == qa_f1(
        "Paris\nLondon", "London"
    )
    assert score_sample("samsum", "", ["x"], None) == SampleScore(0.0, False)  # rouge raises: 0.0


def test_score_sample_reports_and_corrects_recursion_zeroing():
    prediction = " ".join(f"w{k}" for k in range(CALL_LIMIT_EN))  # one 1000-word sentence
    reference_mode = score_sample("gov_report", prediction, ["w0"], None)
    corrected = score_sample("gov_report", prediction, ["w0"], None, corrected=True)
    assert reference_mode == SampleScore(0.0, True)
    assert corrected == SampleScore(rouge_oracle(prediction, "w0"), True) and corrected.score > 0
    # a second answer that scores keeps the sample from being zeroed
    both = score_sample("gov_report", prediction, ["w0", "w5 w6"], None)
    assert both == SampleScore(rouge_oracle(prediction, "w5 w6"), False) and both.score > 0
