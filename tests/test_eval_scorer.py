"""Our BFCL-rule AST scorer against the leaderboard's own checker, on every real item of the four
non-live AST categories with correct and deliberately broken outputs."""

from __future__ import annotations

import collections

import pytest

from eval.bfcl_ast import normalise_string, score_item
from finetune.readers import read_examples
from tests.eval_support import CATEGORIES, bfcl_items, mutations, reference_verdict


@pytest.mark.parametrize("category", CATEGORIES)
def test_scorer_agrees_with_reference_checker(shared_data, category):
    """Every item, correct and broken outputs; our scorer sees the functions both as BFCL wrote them
    and as finetune.readers converted them to JSON Schema (what a real run scores against)."""
    pytest.importorskip("bfcl.eval_checker.ast_eval.ast_checker")
    path = shared_data / "bfcl" / f"BFCL_v4_{category}.json"
    converted = {e.id: e.tools for e in read_examples(path, "bfcl")}
    total, disagreements, verdicts = 0, [], collections.Counter()
    for item in bfcl_items(shared_data / "bfcl", category):
        for label, output in mutations(item):
            expected = reference_verdict(item, output, category)
            ours = score_item(item["function"], output, item["ground_truth"], category).valid
            ours_converted = score_item(converted[item["id"]], output, item["ground_truth"], category).valid
            total += 1
            verdicts[expected] += 1
            if ours != expected or ours_converted != expected:
                disagreements.append((item["id"], label, expected, output))
    assert total > 3000 and verdicts[True] > 500 and verdicts[False] > 500  # both sides exercised
    assert disagreements == [], f"{len(disagreements)}/{total} disagree, e.g. {disagreements[:3]}"


def test_irrelevance_passes_only_without_calls(shared_data):
    item = next(bfcl_items(shared_data / "bfcl", "simple_python"))
    functions = item["function"]
    assert score_item(functions, [], [], "irrelevance").valid
    verdict = score_item(functions, [{"calculate_triangle_area": {"base": 1}}], [], "irrelevance")
    assert not verdict.valid and verdict.error_type == "irrelevance:called"


def test_rules_by_example():
    fn = {"name": "area", "parameters": {"type": "dict", "required": ["r"], "properties": {
        "r": {"type": "float"}, "unit": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}}}}}
    truth = [{"area": {"r": [5.0], "unit": ["square meters", ""], "tags": [["a b"], ""]}}]

    def check(args):
        return score_item([fn], [{"name": "area", "arguments": args}], truth, "simple_python")

    assert check({"r": 5}).valid  # int for float; optional args omitted where "" is acceptable
    assert check({"r": 5.0, "unit": "Square-Meters", "tags": ["A_B"]}).valid  # string normalisation
    assert check({"r": "5"}).error_type == "type_error:simple"
    assert not check({"r": 5.0, "tags": [1]}).valid
    strict = [{"area": {"r": [5.0], "tags": [["1"]]}}]
    nested = score_item([fn], [{"area": {"r": 5.0, "tags": [1]}}], strict, "simple_python")
    assert nested.error_type == "type_error:nested"
    assert check({"unit": "m"}).error_type == "missing_required"
    assert check({"r": 5.0, "colour": "red"}).error_type == "unexpected_param"
    assert check({"r": 6.0}).error_type == "value_error:other"
    assert normalise_string("April 1, 2024") == normalise_string("april 1 2024")
