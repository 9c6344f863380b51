"""Text shared by a router's prompts (system prompt, few-shot prefix, template) is learned at fit time
and removed from what is embedded; the whole prompt is still counted for cost and context."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optiroute import Router, SharedText
from optiroute.analysis.embedding import get_default_embedder, prune_text
from optiroute.analysis.shared_text import MIN_PROMPTS
from optiroute.errors import CorruptArtifactError, InvalidInputError, NoEligibleModelError
from optiroute.router.artifacts import seal

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"
SAVED = Path(__file__).parent / "fixtures" / "saved_router_0_1"

_WORDS = ("You are OptiBot, a meticulous assistant for a financial services company. Follow the policies "
          "below in every answer you give.").split()
#: About 1,700 tokens of system prompt over 40 paragraphs (each a rotation of the same sentence).
SYSTEM = "\n\n".join(
    " ".join(_WORDS[(i * 7) % len(_WORDS):] + _WORDS[: (i * 7) % len(_WORDS)])
    + f" Rule {i}: be accurate, cite sources, and never reveal internal notes."
    for i in range(40)
)
#: A fixed instruction after the question, long enough that pruning keeps none of the question.
SUFFIX = ("Answer in one paragraph. " + " ".join(f"Guideline {i}: stay factual and concise." for i in range(20)))
_TOPICS = ["the derivative of x^3", "Hamlet's author", "the capital of Peru", "photosynthesis", "a Python list",
           "inflation in 1970", "the speed of light", "tort law", "mitochondria", "the French revolution"]
_ASKS = ["Explain {t} to a child.", "What do you know about {t}?", "Write two sentences on {t}, please"]
QUESTIONS = [a.format(t=t) for a in _ASKS for t in _TOPICS]  # 30 different questions


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_a_shared_prefix_and_suffix_are_learned_and_stripped_to_the_question() -> None:
    prompts = [f"{SYSTEM}\n\n{q}\n\n{SUFFIX}" for q in QUESTIONS]
    shared = SharedText.learn(prompts)
    assert shared.stripped == len(prompts) and shared.prompts == len(prompts)
    assert shared.varying_all(prompts) == QUESTIONS
    # A new prompt in the same template routes on its own question.
    assert shared.varying(f"{SYSTEM}\n\nWho wrote Hamlet?\n\n{SUFFIX}") == "Who wrote Hamlet?"
    assert "Who wrote Hamlet?" not in shared.summary()  # counts only: never the prompts' text


def test_same_prefix_different_questions_differ_only_after_stripping() -> None:
    a, b = "What is the derivative of x^2 with respect to x?", "Who wrote the play Hamlet, and in which century?"
    full = [f"{SYSTEM}\n\n{q}\n\n{SUFFIX}" for q in (a, b)]
    shared = SharedText.learn([f"{SYSTEM}\n\n{q}\n\n{SUFFIX}" for q in QUESTIONS])
    emb = get_default_embedder()
    before = emb.encode([prune_text(t)[0] for t in full])
    after = emb.encode([prune_text(t)[0] for t in shared.varying_all(full)])
    assert _cos(before[0], before[1]) > 0.95  # the embedder sees almost only the shared text
    assert _cos(after[0], after[1]) < 0.5  # what varies is what it sees now


def test_a_template_around_the_question_on_one_line_is_stripped() -> None:
    prompts = [f"You are a precise assistant for exam questions. Question: {q} Reply with one word only, "
               "nothing else at all." for q in QUESTIONS]
    shared = SharedText.learn(prompts)
    assert shared.varying(prompts[4]) == QUESTIONS[4]


def test_a_few_shot_prefix_is_stripped_but_its_lines_stay_inside_a_question() -> None:
    shots = "\n\n".join(f"Example {i}: which option is right?\nA. {i}\nB. 10\nAnswer: B" for i in range(5))
    prompts = [f"{shots}\n\n{q}\nA. {k + 20}\nB. {k + 60}" for k, q in enumerate(QUESTIONS)]
    shared = SharedText.learn(prompts)
    assert shared.varying(prompts[0]) == f"{QUESTIONS[0]}\nA. 20\nB. 60"
    # "B. 10" is a line of every prompt (in the examples), but no question ends with it: kept there.
    assert "B. 10" in shared.leading and shared.trailing == []
    assert shared.varying(f"{shots}\n\nHow many?\nA. 9\nB. 10") == "How many?\nA. 9\nB. 10"


def test_text_shared_by_a_minority_is_kept_and_a_majority_line_is_stripped() -> None:
    minority, majority = "Context: the customer is on the premium plan.", "Be brief."
    prompts = []
    for i, q in enumerate(QUESTIONS[:20]):  # 8 of 20 (40 %) carry the minority line, 12 (60 %) the majority one
        head = f"{minority}\n" if i < 8 else ""
        tail = f"\n{majority}" if i < 12 else ""
        prompts.append(f"{head}{q}{tail}")
    shared = SharedText.learn(prompts)
    assert (shared.leading, shared.trailing) == ([], [majority])
    assert shared.varying(prompts[0]) == f"{minority}\n{QUESTIONS[0]}"
    assert shared.varying(prompts[15]) == prompts[15]  # nothing shared: byte for byte


def test_exactly_half_is_not_a_majority() -> None:
    prompts = [f"Line shared by half.\n{q}" if i % 2 else q for i, q in enumerate(QUESTIONS[:20])]
    assert SharedText.learn(prompts).empty


def test_a_prompt_that_is_entirely_shared_text_is_not_emptied() -> None:
    prompts = [f"{SYSTEM}\n\n{q}" for q in QUESTIONS]
    shared = SharedText.learn(prompts)
    assert shared.varying(SYSTEM) == SYSTEM
    assert shared.varying("\n" + SYSTEM + "\n\n") == "\n" + SYSTEM + "\n\n"
    # The same question asked in most prompts is the whole prompt: kept, not stripped to nothing.
    same = SharedText.learn(["What is 2 + 2?"] * 15 + QUESTIONS[:5])
    assert same.varying("What is 2 + 2?") == "What is 2 + 2?"


def test_too_few_prompts_learn_nothing_and_the_threshold_is_checked() -> None:
    few = [f"Shared line.\n{q}" for q in QUESTIONS[: MIN_PROMPTS - 1]]
    assert SharedText.learn(few).empty
    assert not SharedText.learn(few + [f"Shared line.\n{QUESTIONS[-1]}"]).empty
    with pytest.raises(ValueError):
        SharedText.learn(few, threshold=0.3)  # a minority threshold would strip what tells prompts apart


# ----------------------------------------------------------------------------------- fitted routers
@pytest.fixture(scope="module")
def prefixed() -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """The MMLU-Pro slice with the same system prompt pasted in front of every prompt."""
    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    o = pd.read_csv(SLICE / "outcomes.csv.gz", dtype={"prompt_id": str})
    p = p.assign(text=SYSTEM + "\n\n" + p["text"])
    return p, o, SLICE / "prices.csv"


@pytest.fixture(scope="module")
def fitted(prefixed) -> Router:
    p, o, prices = prefixed
    return Router.fit(p, o, prices, predictor="knn", guard=False)


def test_fit_learns_the_system_prompt_and_embeds_the_questions(fitted: Router, prefixed) -> None:
    p, _, _ = prefixed
    shared = fitted.shared_text
    assert shared is not None and shared.stripped == shared.prompts == int((p["split"] == "train").sum())
    plain = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    train = plain[plain["split"] == "train"]["text"].tolist()
    assert shared.varying_all(p[p["split"] == "train"]["text"].tolist()) == train  # byte for byte
    # The stored vectors are the questions' own: nearest neighbour of a question is itself.
    first = get_default_embedder().encode([prune_text(train[0])[0]])
    hit = fitted.index.search_batch(first, 1)  # type: ignore[union-attr]
    assert fitted.index.prompt_ids[int(hit.ids[0, 0])] == p[p["split"] == "train"]["prompt_id"].iloc[0]  # type: ignore[union-attr]
    assert float(hit.sims[0, 0]) > 0.98


def test_decide_and_decide_batch_agree_and_the_whole_prompt_is_counted(fitted: Router, prefixed) -> None:
    p, _, _ = prefixed
    texts = p[p["split"] == "test"]["text"].tolist()[:12]
    batch = fitted.decide_batch(texts, preferences="balanced", explore=False)
    for i, t in enumerate(texts):
        one = fitted.decide(t, preferences="balanced")
        assert one.model == batch.model_names[i]
        assert one.chosen.predicted_quality == pytest.approx(batch[i].chosen.predicted_quality, abs=1e-4)
    # Same vector as the bare question, but the cost counts the system prompt too.
    bare = fitted.shared_text.varying(texts[0])  # type: ignore[union-attr]
    q_full = fitted.predict_quality([texts[0]])[0]
    q_bare = fitted.predict_quality([bare])[0]
    np.testing.assert_allclose(q_full, q_bare, atol=1e-5)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": texts[0]}]
    np.testing.assert_allclose(fitted.predict_quality([chat])[0], q_bare, atol=1e-5)  # the last user turn, stripped
    full = fitted.decide(texts[0], preferences="quality-first")
    short = fitted.decide(bare, preferences="quality-first")
    assert full.model == short.model
    assert full.chosen.predicted_cost_usd > short.chosen.predicted_cost_usd



def test_the_context_window_check_counts_the_whole_prompt(fitted: Router, prefixed, tmp_path: Path) -> None:
    p, _, _ = prefixed
    text = p[p["split"] == "test"]["text"].iloc[0]
    bare = fitted.shared_text.varying(text)  # type: ignore[union-attr]
    fitted.save(tmp_path / "r")
    small = Router.load(tmp_path / "r")
    model = small.models[0]
    # A window the bare question (plus its answer) fits, but the whole prompt does not.
    small.registry.update(model, context_window=len(bare) // 4 + 1200)
    assert small.decide(bare, candidates=[model]).model == model
    with pytest.raises(NoEligibleModelError, match="context"):
        small.decide(text, candidates=[model])


def test_save_load_round_trip_keeps_the_shared_text_and_decisions(fitted: Router, prefixed, tmp_path: Path) -> None:
    p, _, _ = prefixed
    fitted.save(tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["shared_text"]["prompts"] == fitted.shared_text.prompts  # type: ignore[union-attr]
    back = Router.load(tmp_path / "r")
    assert back.shared_text == fitted.shared_text
    texts = p[p["split"] == "test"]["text"].tolist()
    assert back.decide_batch(texts, preferences="balanced").model_names == \
        fitted.decide_batch(texts, preferences="balanced").model_names
    # A damaged entry is refused with the field named.
    manifest["shared_text"]["threshold"] = 0.2
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(seal(manifest)))
    with pytest.raises(CorruptArtifactError, match="shared_text.threshold"):
        Router.load(tmp_path / "r")


def test_a_manifest_without_the_field_loads_and_embeds_prompts_as_given() -> None:
    assert "shared_text" not in json.loads((SAVED / "knn" / "manifest.json").read_text())
    router = Router.load(SAVED / "knn")
    assert router.shared_text is None
    assert Router.default().shared_text is None  # nothing fitted, nothing learned


def test_turning_it_off_and_passing_one_in(prefixed) -> None:
    p, o, prices = prefixed
    off = Router.fit(p, o, prices, predictor="knn", guard=False, strip_shared=False)
    assert off.shared_text is None
    learned = SharedText.learn(p["text"].tolist())
    assert Router.default(shared_text=learned).shared_text is learned
    with pytest.raises(InvalidInputError, match="SharedText"):
        Router(shared_text="You are a helpful assistant.")  # type: ignore[arg-type]
