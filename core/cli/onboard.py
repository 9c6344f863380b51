"""The ``optiroute onboard`` command (registered in :mod:`optiroute.cli.app`): evaluate a new model on
K-Means representatives of a saved router's store through any OpenAI-compatible endpoint.

The store keeps prompt embeddings, not texts, so the texts come from ``--prompts`` (the router's
training prompts in the documented ``prompts.csv[.gz]`` format, optionally with a ``reference``
column); ``--references`` adds reference answers (``prompt_id, reference``). Prompts without a
reference are graded by a judge the router picks among its own models (``--judge-base-url``).
HTTP uses the standard library only; a provider's HTTP error passes through untouched.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from optiroute.cli.common import check_int, check_real, check_url, console, fail
from optiroute.cli.render import Col, print_json, print_table
from optiroute.errors import DataFormatError, OptiRouteError
from optiroute.fit.datasets import load_prompts
from optiroute.onboard.onboarding import onboard
from optiroute.router.router import Router
from optiroute.schema.numbers import MAX_COUNT, MAX_PRICE_PER_MTOK, MAX_SECONDS, MAX_TOKENS

__all__ = ["chat_fn", "onboard_cmd"]
#: Added as a system message when every reference is a multiple-choice letter (MMLU-Pro style).
MC_INSTRUCTION = ("Answer the multiple-choice question. Think briefly, then finish with "
                  "'The answer is (X)' where X is the letter of the correct option.")


def chat_fn(base_url: str, api_key: str | None = None, *, max_tokens: int = 256, timeout: float = 120.0,
            system: str | None = None) -> Callable[[str, str], str]:
    """``fn(model, prompt) -> answer text`` calling ``{base_url}/chat/completions`` (temperature 0)."""
    url = base_url.rstrip("/") + "/chat/completions"

    def call(model: str, prompt: str) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}]
        body = json.dumps({"model": model, "messages": messages, "max_tokens": max_tokens,
                           "temperature": 0}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data: Any = json.loads(resp.read().decode("utf-8"))
        return str(data["choices"][0]["message"].get("content") or "")

    return call


def _texts_and_refs(prompts: Path, references: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    import pandas as pd

    p = load_prompts(prompts)
    texts = dict(zip(p["prompt_id"].astype(str), p["text"].astype(str), strict=True))
    refs: dict[str, str] = {}
    if "reference" in p.columns:
        refs.update({str(i): str(r) for i, r in zip(p["prompt_id"], p["reference"], strict=True) if pd.notna(r)})
    if references is not None:
        try:
            r = pd.read_csv(references, dtype=str)
        except Exception as exc:  # pandas raises many types (missing file, ParserError, UnicodeDecodeError...)
            raise DataFormatError(f"Cannot read references file {str(references)!r} as CSV "
                                  f"({type(exc).__name__}: {exc}); it needs columns prompt_id, reference.") from None
        if not {"prompt_id", "reference"} <= set(r.columns):
            raise DataFormatError(f"{str(references)!r} needs columns prompt_id, reference (got {list(r.columns)}).")
        refs.update({i: v for i, v in zip(r["prompt_id"], r["reference"], strict=True) if isinstance(v, str)})
    return texts, refs


def onboard_cmd(
    router_dir: Annotated[
        Path, typer.Option("--router", "-r", help="A saved router directory (its store gets the new column).")
    ],
    model: Annotated[str, typer.Option("--model", help="The new model's name at the endpoint (and in the router).")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    ],
    prompts: Annotated[
        Path,
        typer.Option("--prompts",
                     help="The router's training prompts (prompts.csv[.gz]: prompt_id, text[, reference])."),
    ],
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="OPTIROUTE_ONBOARD_API_KEY", help="Bearer key for the endpoint.")
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", help="Representatives to evaluate (default: 2 % of the stored prompts).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the updated router here (default: back into --router).")
    ] = None,
    references: Annotated[
        Path | None,
        typer.Option("--references",
                     help="CSV prompt_id, reference (multiple-choice letters or exact answers)."),
    ] = None,
    judge_base_url: Annotated[
        str | None,
        typer.Option("--judge-base-url",
                     help="Endpoint serving the router's models, for the judge (prompts without a reference)."),
    ] = None,
    judge_api_key: Annotated[str | None, typer.Option("--judge-api-key", envvar="OPTIROUTE_JUDGE_API_KEY")] = None,
    price_in: Annotated[
        float | None, typer.Option("--price-in", help="USD per million input tokens, for a new card.")
    ] = None,
    price_out: Annotated[
        float | None, typer.Option("--price-out", help="USD per million output tokens, for a new card.")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Answer length limit.")] = 256,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for one answer.")] = 120.0,
    seed: Annotated[int, typer.Option("--seed", help="K-Means seed.")] = 0,
    impute: Annotated[
        bool,
        typer.Option("--impute/--no-impute",
                     help="Fill the rest of the new column from the stored models it resembles (checked on held-out "
                          "representatives)."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
) -> None:
    """Onboard a new model: run it on K-Means representatives of the store, score, add the outcomes."""
    from rich.progress import Progress

    check_int(k, "--k", lo=1, hi=MAX_COUNT)
    check_real(price_in, "--price-in", lo=0.0, hi=MAX_PRICE_PER_MTOK)
    check_real(price_out, "--price-out", lo=0.0, hi=MAX_PRICE_PER_MTOK)
    if (price_in is None) != (price_out is None):
        fail("give both --price-in and --price-out, or neither")
    check_int(max_tokens, "--max-tokens", lo=1, hi=MAX_TOKENS)
    check_real(timeout, "--timeout", lo=0.0, lo_open=True, hi=MAX_SECONDS)
    check_int(seed, "--seed", lo=0, hi=2**32 - 1)
    check_url(base_url, "--base-url")
    check_url(judge_base_url, "--judge-base-url")
    if not model.strip():
        fail("--model needs the new model's name")
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {str(out)!r} is a file; give a directory to save the router into.")
    try:
        texts, refs = _texts_and_refs(prompts, references)
        multiple_choice = bool(refs) and all(len(v.strip()) == 1 for v in refs.values())
        ask = chat_fn(base_url, api_key, max_tokens=max_tokens, timeout=timeout,
                      system=MC_INSTRUCTION if multiple_choice else None)
        judge = chat_fn(judge_base_url, judge_api_key, max_tokens=16, timeout=timeout) if judge_base_url else None
        price = (price_in, price_out) if price_in is not None and price_out is not None else None
        with console.status("Loading the router..."):
            router = Router.load(router_dir)
            router.models  # noqa: B018 - loads the state before the progress bar starts
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"asking {model}", total=None)

            def answer(text: str) -> str:
                progress.advance(task)
                return ask(model, text)

            result = onboard(router, model, answer, prompts=texts, k=k, references=refs or None,
                             judge_fn=judge, price=price, seed=seed, impute=impute)
        with console.status("Saving the router..."):
            where = router.save(out if out is not None else router_dir)
    except (OptiRouteError, OSError) as exc:
        fail(exc)
        return
    scored = [s for s in result.scores if s is not None]
    n_meas = len(scored) + result.measured_before
    if as_json:
        print_json({"model": result.model, "representatives": result.k, "scored": len(scored),
                    "mean_score": result.mean_score, "accuracy_estimate": result.accuracy_estimate,
                    "accuracy_se": result.accuracy_se, "measured_outcomes": n_meas,
                    "measured_before": result.measured_before, "card_added": result.card_added,
                    "predictor": result.predictor, "saved_to": str(where),
                    "imputation": None if result.imputation is None else result.imputation.reason})
        return
    print_table(console, [
        Col("model", "model", name=True),
        Col("k", "asked", "representative prompts sent to the model", justify="right"),
        Col("scored", "scored", "answers that could be scored", justify="right"),
        Col("mean", "mean score", fmt=lambda v: v if isinstance(v, str) else f"{v:.3f}", justify="right"),
        Col("card", "new card", "a card was created for it"),
        Col("predictor", "predictor"),
    ], [{"model": result.model, "k": result.k, "scored": len(scored),
         "mean": "-" if result.mean_score is None else result.mean_score,
         "card": "yes" if result.card_added else "no", "predictor": result.predictor}])
    earlier = f", {result.measured_before} of them from earlier runs" if result.measured_before else ""
    console.print(f"Accuracy over the store: {result.accuracy_estimate:.3f} +/- {1.96 * result.accuracy_se:.3f} "
                  f"(95 %, from {n_meas} measured outcomes{earlier}). Onboarding the model again adds "
                  f"outcomes on other prompts; about {3 * n_meas} more would halve the interval.")
    if result.imputation is not None:
        like = result.imputation.resembling()
        console.print(f"Column: {result.imputation.reason}" + (f"; resembles {like}" if like else "") + ".")
    console.print(f"Saved the router with {result.model!r} to {where}.")
