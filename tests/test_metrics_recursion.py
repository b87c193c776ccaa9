"""The recursion-limit failure of the reference, shown on the real ``rouge`` package.

A script with the reference ``eval.py``'s call structure (module-level loop -> ``scorer`` ->
``rouge_score`` [-> from ``rouge_zh_score``] -> ``Rouge.get_scores`` -> ... -> ``_recon``), run as
``python script.py`` like the reference, scores sentence pairs whose backtrack needs about 991
nested calls. What this shows: on this interpreter, with that stack shape, the real package fails
(and LongBench scores 0.0) on exactly the pairs where ``longbench``'s reference mode does, and the
boundary is 991 calls for ``rouge`` tasks and 990 for ``rouge_zh`` tasks. It does not show the
boundary for other call paths (another depth shifts it), or for Python versions other than 3.11,
on which the reference was measured; there the test is skipped.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import pytest

from longbench.metrics import score_sample
from longbench.metrics.chinese import cut
from longbench.metrics.lcs import lcs_backtrack, lcs_rows, match_masks
from longbench.metrics.rouge import CALL_LIMIT_EN, CALL_LIMIT_ZH, split_sentences

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the limits were measured on Python 3.11"
)

EVAL_LIKE = textwrap.dedent(
    """
    import json
    import sys

    import jieba
    from rouge import Rouge

    jieba.setLogLevel(60)


    def rouge_score(prediction, ground_truth, **kwargs):
        rouge = Rouge()
        try:
            scores = rouge.get_scores([prediction], [ground_truth], avg=True)
        except:  # noqa: E722 -- the reference's bare except
            return 0.0
        return scores["rouge-l"]["f"]


    def rouge_zh_score(prediction, ground_truth, **kwargs):
        prediction = " ".join(list(jieba.cut(prediction, cut_all=False)))
        ground_truth = " ".join(list(jieba.cut(ground_truth, cut_all=False)))
        score = rouge_score(prediction, ground_truth)
        return score


    dataset2metric = {"gov_report": rouge_score, "vcsum": rouge_zh_score}


    def scorer(dataset, predictions, answers, all_classes):
        scores = []
        for prediction, ground_truths in zip(predictions, answers):
            score = 0.0
            for ground_truth in ground_truths:
                score = max(score, dataset2metric[dataset](prediction, ground_truth, all_classes=all_classes))
            scores.append(score)
        return scores


    if __name__ == "__main__":
        cases = json.load(open(sys.argv[1], encoding="utf-8"))
        results = {}
        for dataset in cases:  # module level, as eval.py's loop over files
            predictions = [case[0] for case in cases[dataset]]
            answers = [[case[1]] for case in cases[dataset]]
            results[dataset] = scorer(dataset, predictions, answers, None)
        print(json.dumps(results))
    """
)


def calls_of(hypothesis: str, reference: str) -> int:
    """Nested calls of the backtrack for a one-sentence pair (reference sentence x, hypothesis y)."""
    (x,), (y,) = split_sentences(reference), split_sentences(hypothesis)
    masks = match_masks(y)
    return lcs_backtrack(x, masks, len(y), lcs_rows(x, masks, len(y)))[1]


def boundary_cases(rng: random.Random) -> list[tuple[str, str]]:
    words = [f"w{k}" for k in range(1000)]
    cases = [(" ".join(words[:m]), "w0") for m in range(985, 996)]  # calls == m + 1
    cases += [("w5", " ".join(words[:m])) for m in range(985, 996)]  # reference side long
    vocab = ["a", "b", "c", "d", "e", "f"]
    for _ in range(16):  # mixed shapes, many ties, landing around the limit
        long = " ".join(rng.choice(vocab) for _ in range(rng.randint(975, 1000)))
        short = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12)))
        cases.append((long, short) if rng.random() < 0.5 else (short, long))
    return cases


def test_recursion_limit_matches_the_reference_script(tmp_path):
    cases = boundary_cases(random.Random(2024))
    script = tmp_path / "eval_like.py"
    script.write_text(EVAL_LIKE, encoding="utf-8")
    data = tmp_path / "cases.json"
    data.write_text(json.dumps({"gov_report": cases, "vcsum": cases}), encoding="utf-8")
    run = subprocess.run([sys.executable, str(script), str(data)], capture_output=True, text=True, check=True)
    reference = json.loads(run.stdout)

    for dataset, limit in (("gov_report", CALL_LIMIT_EN), ("vcsum", CALL_LIMIT_ZH)):
        failed_calls, passed_calls = [], []
        for (hypothesis, answer), expected in zip(cases, reference[dataset], strict=True):
            ours = score_sample(dataset, hypothesis, [answer], None)
            assert ours.score == expected, (dataset, hypothesis[:40], answer[:40])
            if dataset == "vcsum":
                hypothesis, answer = " ".join(cut(hypothesis)), " ".join(cut(answer))
            calls = calls_of(hypothesis, answer)
            # every case shares a word, so the reference's 0.0 can only come from the overflow
            (failed_calls if expected == 0.0 else passed_calls).append(calls)
            assert ours.recursion_zeroed == (expected == 0.0)
        assert max(passed_calls) == limit and min(failed_calls) == limit + 1, dataset
