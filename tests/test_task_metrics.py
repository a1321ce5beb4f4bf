"""Task metrics and the refusal screen on hand-written answers with known scores."""

from __future__ import annotations

import pytest

from backend.evaluation.refusal import RefusalPrompt, is_refusal, refusal_prompts, refusal_rates
from backend.evaluation.task_metrics import fields, mean_scores, normalize, score


def test_exact_and_normalized_match() -> None:
    assert score("Paris", "Paris")["exact"] == 1.0
    assert score(" Paris\n", "Paris")["exact"] == 1.0
    same = score("The answer: Paris!", "answer paris")
    assert same["exact"] == 0.0 and same["normalized"] == 1.0
    assert normalize("An Apple, a day.") == "apple day"


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("category: billing | priority: high", "category: billing | priority: high", 1.0),
        ("Category: Billing | Priority: low", "category: billing | priority: high", 0.5),
        ("priority: high\ncategory: billing", "category: billing | priority: high", 1.0),
        ('{"category": "billing", "priority": "high"}', "category: billing | priority: high", 1.0),
        ("It is about billing.", '{"category": "billing", "priority": "high"}', 0.0),
        ('{"due_date": "2026-01-31", "amount": 120}', '{"amount": 120, "due date": "2026-01-31"}', 1.0),
    ],
)
def test_field_match_counts_the_reference_fields_the_answer_gives(answer: str, reference: str, expected: float) -> None:
    scores = score(answer, reference)
    assert scores["field_match"] == expected
    assert scores["primary"] == expected


def test_free_text_has_no_field_match_and_rouge_l_is_the_primary_score() -> None:
    assert fields("The refund takes five days.") is None
    assert fields("Note: this is one line") is None  # one pair is a sentence, not a record
    scores = score("a cat sat on a mat", "the cat sat on the mat")
    assert "field_match" not in scores
    # ROUGE-L: the longest common subsequence "cat sat on mat" is 4 of 6 tokens each way: F1 = 2/3.
    assert scores["rouge_l"] == pytest.approx(2 / 3)
    assert scores["primary"] == scores["rouge_l"]
    assert 0.4 < scores["chrf"] < 0.5
    assert score("completely unrelated words", "the cat sat on the mat")["rouge_l"] == 0.0


def test_means_skip_the_examples_a_metric_does_not_apply_to() -> None:
    per = [score("a: 1 | b: 2", "a: 1 | b: 3"), score("x", "x")]
    means = mean_scores(per)
    assert means["examples"] == 2.0
    assert means["field_match"] == 0.5  # only the structured example
    assert means["exact"] == 0.5


def test_refusals_are_read_from_the_opening_of_an_answer() -> None:
    for answer in (
        "I can't help with that.",
        "I’m sorry, but I cannot assist.",
        "I won't do that.",
        "As an AI, I must decline.",
        "Sorry, I am unable to provide this.",
    ):
        assert is_refusal(answer), answer
    for answer in (
        "Sure, here is how a tap washer is replaced.",
        "Keep bleach and ammonia apart.",
        "x " * 150 + "I can't stress this enough",
    ):
        assert not is_refusal(answer), answer


def test_the_shipped_refusal_set_pairs_each_request_with_a_harmless_look_alike() -> None:
    prompts = refusal_prompts()
    assert len(prompts) == 24 and sum(p.should_refuse for p in prompts) == 12
    checks = [RefusalPrompt("bad", True), RefusalPrompt("bad2", True), RefusalPrompt("ok", False)]
    rates = refusal_rates(checks, ["I cannot help with that.", "Here you go: step 1", "I'm sorry, no."])
    assert rates == {"refusal_rate": 0.5, "over_refusal_rate": 1.0}


def test_the_report_files_show_task_scores_and_the_refusal_check() -> None:
    from backend.evaluation.report import render_html, render_markdown
    from tests.test_evaluation import _report

    report = _report(
        task={"base": {"primary": 0.25, "rouge_l": 0.25, "exact": 0.0}, "adapter": {"primary": 1.0, "exact": 1.0}},
        refusal={
            "base": {"refusal_rate": 0.75, "over_refusal_rate": 0.0},
            "adapter": {"refusal_rate": 0.5, "over_refusal_rate": 0.25},
        },
    )
    markdown = render_markdown(report)
    assert "## Task scores" in markdown and "refused (should)" in markdown
    assert "| base | 0.250 | 0.000 | – | – | 0.250 | – | 75% | 0% |" in markdown
    assert "| colours | 1.000 | 1.000 | – | – | – | – | 50% | 25% |" in markdown
    page = render_html(report)
    assert "<h2>Task scores</h2>" in page and "<td class='num'>50%</td>" in page
    assert "## Task scores" not in render_markdown(_report())  # nothing measured, no section


def test_the_report_files_list_each_suites_passes_and_why_a_prompt_failed() -> None:
    from backend.evaluation.report import render_html, render_markdown
    from tests.test_evaluation import _report

    run = {
        "prompts": ["Refund?", "Hours?"],
        "outputs": [{"base": "No.", "adapter": "30 days."}, {"base": "9-5", "adapter": "9-5"}],
        "results": {
            "base": {"passed": [False, True], "pass_rate": 0.5, "why": [["does not contain '30 days'"], []]},
            "adapter": {"passed": [True, True], "pass_rate": 1.0, "why": [[], []]},
        },
    }
    report = _report(suites={"core": run})
    markdown = render_markdown(report)
    assert "## Regression suite: core" in markdown
    assert "| base | 1 of 2 | 1 |" in markdown and "| colours | 2 of 2 | – |" in markdown
    assert "> base, prompt 1: does not contain '30 days'" in markdown
    assert "<h2>Regression suite: core</h2>" in render_html(report)
