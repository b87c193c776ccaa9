"""The ``longbench`` command line: ``tasks``, ``download``, ``eval``, ``compare``, ``predict``, ``run``,
``compress``.

Each subcommand parses its arguments into the options of :mod:`longbench.api`, calls it and prints what it
returns; the library never imports this module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from longbench.backends import BACKENDS
from longbench.backends.hf import DTYPES
from longbench.errors import LongBenchError, SettingError

if TYPE_CHECKING:  # imported lazily at run time, to keep start-up fast
    from longbench.api import (
        BackendOptions,
        CompareOptions,
        CompressOptions,
        EvalOptions,
        EvalReport,
        PredictOptions,
        V2Options,
    )
    from longbench.runner import PredictSummary


def _names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated list option as its names (None when not given)."""
    return tuple(name.strip() for name in text.split(",") if name.strip()) if text else None


def _cmd_tasks(args: argparse.Namespace) -> int:
    from longbench.reports import Table
    from longbench.tasks import all_tasks

    header = ["task", "category", "lang", "metric", "max_new", "samples", "E", "chat", "first_line"]
    rows = [
        [
            t.name,
            t.category,
            t.language,
            t.metric,
            str(t.max_new_tokens),
            str(t.samples),
            str(t.e_samples) if t.has_e else "-",
            "yes" if t.chat else "no",
            "yes" if t.first_line_only else "no",
        ]
        for t in all_tasks(e=args.e)
    ]
    print(Table("LongBench-E tasks" if args.e else "LongBench tasks", header, rows).text(), end="")
    return 0


def _eval_options(args: argparse.Namespace) -> EvalOptions:
    from longbench.api import EvalOptions

    return EvalOptions(
        args.pred_dirs,
        e=args.e,
        v2=args.v2,
        out=args.out,
        corrected=args.corrected,
        compensated=args.compensated,
        tasks=_names(args.tasks),
        workers=args.workers,
        published=args.published,
        ci=args.ci,
        plots=args.plots,
    )


def _print_eval_report(report: EvalReport) -> int:
    for table in report.tables:
        print(table.text())
    for line in report.notes:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    print(
        f"wrote {len(report.files)} files to {report.out_dir}; "
        f"open {report.out_dir / 'report.html'} to see the tables and figures"
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from longbench.api import evaluate

    return _print_eval_report(evaluate(_eval_options(args)))


def _compare_options(args: argparse.Namespace) -> CompareOptions:
    from longbench.api import CompareOptions

    return CompareOptions(
        args.pred_dirs,
        e=args.e,
        v2=args.v2,
        out=args.out,
        corrected=args.corrected,
        compensated=args.compensated,
        tasks=_names(args.tasks),
        workers=args.workers,
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    from longbench.api import compare

    report = compare(_compare_options(args))
    print(report.table.text())
    for line in report.notes:
        print(line)
    print(f"wrote {len(report.files)} files to {report.out_dir}")
    return 0


def _download_v2() -> int:
    from longbench.v2.data import REPO_ID, REVISION, checksum_warning, data_source, iter_records

    source = data_source("hub")
    count = sum(1 for _ in iter_records(source))  # validates every record and hashes the file
    print(f"LongBench v2 data from {REPO_ID} (revision {REVISION}):")
    print(source.path)
    print(f"{count} records validated; sha256 {source.sha256}")
    warning = checksum_warning(source)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from longbench.archive import REPO_ID, download

    if args.v2:
        return _download_v2()

    report = download(args.revision, force=args.force)
    release = report.release
    print(f"LongBench data from {REPO_ID} (revision {release.revision}, commit {release.commit}):")
    print(release.directory)
    absent = f"; {len(report.absent)} released files absent from the archive" if report.absent else ""
    print(f"verified {len(report.verified)} released files by sha256{absent}")
    return 0


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``openai`` and ``vllm`` backends, and of Ray replicas (``predict``, ``run``, ``compress``)."""
    group = parser.add_argument_group("openai and vllm backends")
    _add_openai_arguments(group)
    _add_vllm_arguments(group)
    _add_ray_arguments(parser)


def _add_openai_arguments(group: argparse._ArgumentGroup) -> None:
    """The ``openai`` backend: servers, keys, requests."""
    group.add_argument(
        "--base-url",
        metavar="URL[,URL...]",
        help="openai: OpenAI-compatible API base URL(s), e.g. http://host:8000/v1; requests are spread over "
        "several (required unless an API key is set: then https://api.openai.com/v1)",
    )
    group.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="openai: environment variable holding the API key (default: OPENAI_API_KEY if set, else no key)",
    )
    group.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="openai: requests in flight (default 16)"
    )
    group.add_argument(
        "--request-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="openai: seconds one attempt may take in all (connecting, sending and the whole answer) "
        "before it is retried (default 600)",
    )
    group.add_argument(
        "--unreachable-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="openai: stop the run (keeping every prediction) when no request has reached the server for S "
        "seconds; a server back within S is used again (default 120)",
    )
    group.add_argument(
        "--max-retries", type=int, default=6, metavar="N", help="openai: retries per sample (default 6)"
    )
    group.add_argument(
        "--tokenizer",
        metavar="ID_OR_PATH",
        help="openai: tokenizer for truncation: a Hugging Face id or path, or tiktoken:<encoding> "
        "(default: the --model name)",
    )
    group.add_argument(
        "--completion-as-chat",
        action="store_true",
        help="openai: send the 6 completion-style tasks to /v1/chat/completions too (chat-only APIs)",
    )
    group.add_argument(
        "--token-limit-parameter",
        choices=("max_tokens", "max_completion_tokens"),
        default="max_tokens",
        help="openai: body field for the answer's token budget (max_completion_tokens for APIs such as "
        "OpenAI's reasoning models that reject max_tokens; default max_tokens)",
    )
    group.add_argument(
        "--omit-temperature",
        action="store_true",
        help="openai: send no temperature (for APIs that reject it; decoding is then the server's default)",
    )


def _add_vllm_arguments(group: argparse._ArgumentGroup) -> None:
    """The ``vllm`` backend: parallelism and window."""
    group.add_argument(
        "--tensor-parallel-size", type=int, default=1, metavar="N", help="vllm: GPUs per model (default 1)"
    )
    group.add_argument(
        "--pipeline-parallel-size",
        type=int,
        default=1,
        metavar="N",
        help="vllm: pipeline stages, passed to vLLM (across nodes through Ray; default 1)",
    )
    group.add_argument(
        "--data-parallel-size",
        type=int,
        default=1,
        metavar="N",
        help="vllm: engine copies inside vLLM, passed to vLLM (default 1)",
    )
    group.add_argument(
        "--max-model-len", type=int, metavar="N", help="vllm: context window to allocate (default: model's)"
    )


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """Ray replicas of any backend."""
    ray = parser.add_argument_group("Ray (pip install 'longbench[ray]')")
    ray.add_argument(
        "--ray",
        metavar="local|auto|ray://HOST:PORT",
        help="run --replicas copies of the backend as Ray actors: local starts Ray on this machine, auto joins "
        "the cluster Ray is configured for; this process writes the results",
    )
    ray.add_argument(
        "--replicas", type=int, default=1, metavar="N", help="with --ray: backend copies (default 1)"
    )
    ray.add_argument(
        "--gpus-per-replica",
        type=int,
        metavar="G",
        help="with --ray: GPUs per copy (default 1 when the cluster has GPUs, else 0: one CPU each)",
    )


def _backend_options(args: argparse.Namespace) -> BackendOptions:
    """The backend settings of ``predict``, ``run`` or ``compress`` (each reads the ones it has)."""
    from longbench.api import BackendOptions

    return BackendOptions(
        dtype=args.dtype,
        device=args.device,
        batch_size=args.batch_size,
        chat_template=args.chat_template,
        trust_remote_code=args.trust_remote_code,
        revision=args.revision,
        attn_implementation=getattr(args, "attn_implementation", None),
        chat_template_kwargs=getattr(args, "chat_template_kwargs", None),
        think_tags=getattr(args, "think_tags", None),
        base_urls=_names(args.base_url) or (),
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        request_timeout=args.request_timeout,
        unreachable_timeout=args.unreachable_timeout,
        max_retries=args.max_retries,
        tokenizer=args.tokenizer,
        completion_as_chat=args.completion_as_chat,
        token_limit_parameter=args.token_limit_parameter,
        omit_temperature=args.omit_temperature,
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        data_parallel_size=args.data_parallel_size,
        max_model_len=args.max_model_len,
        ray=args.ray,
        replicas=args.replicas,
        gpus_per_replica=args.gpus_per_replica,
    )


def _v2_options(args: argparse.Namespace) -> V2Options:
    from longbench.api import V2Options

    return V2Options(
        cot=args.cot,
        no_context=args.no_context,
        rag=args.rag,
        temperature=args.temperature,
        difficulty=args.difficulty,
        length=args.length,
        domain=None if args.domain is None else tuple(args.domain.split(",")),
        ids=args.ids,
    )


def _predict_options(args: argparse.Namespace) -> PredictOptions:
    from longbench.api import PredictOptions

    return PredictOptions(
        model=args.model,
        backend=args.backend,
        engine=_backend_options(args),
        tasks=_names(args.tasks),
        category=args.category,
        e=args.e,
        v2=args.v2,
        v2_options=_v2_options(args),
        data=args.data,
        verify=args.verify,
        max_length=args.max_length,
        limit=args.limit,
        out=args.out,
        model_name=args.model_name,
        allow_version_change=args.allow_version_change,
        dump_prompts=args.dump_prompts,
        shard=args.shard,
        top_k=args.top_k,
        seed=args.seed,
        thinking_budget=args.thinking_budget,
    )


def _report_predictions(summary: PredictSummary) -> int:
    """Print what a predict run did; the exit status is 1 when samples failed."""
    if summary.dumped is not None:
        print(f"wrote {summary.dumped} prompts (nothing generated)")
        return 0
    skipped = sum(outcome.skipped for outcome in summary.tasks.values())
    rate = summary.written / summary.seconds if summary.seconds else 0.0
    print(
        f"{summary.out_dir}: {summary.written} new predictions in {summary.seconds:.1f} s "
        f"({rate:.2f} samples/s, {summary.generated_tokens} tokens generated), {skipped} already there"
    )
    if summary.failed:
        print(
            f"longbench: {summary.failed} samples failed, listed in {summary.errors_file}; "
            "run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from longbench.api import predict

    return _report_predictions(predict(_predict_options(args)))


def _run_eval_options(args: argparse.Namespace, pred_dir: Path) -> EvalOptions:
    """The scoring half of ``run``: the folder just predicted, as ``eval`` would score it."""
    from longbench.api import EvalOptions

    return EvalOptions(
        [pred_dir], e=args.e, v2=args.v2, out=args.metrics_out, corrected=args.corrected, plots=args.plots
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from longbench.api import evaluate, predict

    summary = predict(_predict_options(args))
    status = _report_predictions(summary)
    if status != 0 or summary.dumped is not None:
        return status
    status = _print_eval_report(evaluate(_run_eval_options(args, summary.out_dir)))
    if args.data == "sample":
        print(
            "note: these scores come from the bundled sample set (a few samples per task), not the benchmark: "
            "they show that the pipeline runs, not how good the model is; --data hub runs the real thing"
        )
    return status


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``predict`` and ``run``."""
    _add_run_choice_arguments(parser)
    _add_data_arguments(parser)
    _add_budget_arguments(parser)
    _add_output_arguments(parser)
    _add_model_arguments(parser)
    _add_split_arguments(parser)
    _add_backend_arguments(parser)
    _add_v2_arguments(parser)
    _add_call_arguments(parser)


def _add_run_choice_arguments(parser: argparse.ArgumentParser) -> None:
    """What to predict: the model, its backend, the tasks."""
    parser.add_argument(
        "--model", required=True, metavar="ID_OR_PATH", help="hub id, local path or builtin:tiny"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="transformers",
        help="(default transformers)",
    )
    parser.add_argument("--tasks", metavar="A,B", help="comma-separated task names (default: all)")
    parser.add_argument(
        "--category",
        metavar="C",
        help='only one category, e.g. "Multi-Doc QA" or "Few-shot Learning" (as the tables name it)',
    )
    parser.add_argument("--e", action="store_true", help="LongBench-E: the 13 tasks' length-balanced files")


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data comes from."""
    parser.add_argument(
        "--data",
        default="hub",
        metavar="hub|sample|PATH",
        help="hub (download THUDM/LongBench), sample (bundled tiny set), a data.zip, a folder or a .jsonl file",
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="use data files named like released ones as they are, without checking their sha256 (your own "
        "files); recorded in run.json",
    )


def _add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """Prompt budget, batch and sample limit."""
    parser.add_argument(
        "--max-length",
        type=int,
        metavar="N",
        help="prompt budget in tokens (default: the reference's value for the model, else its window "
        "less the task's new tokens)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, metavar="N", help="transformers: prompts per batch"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N samples of each task")


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Where predictions go (or the prompts, with --dump-prompts)."""
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="prediction folder root (default pred, or pred_e)"
    )
    parser.add_argument("--model-name", metavar="NAME", help="folder name (default: last part of --model)")
    parser.add_argument(
        "--allow-version-change",
        action="store_true",
        help="add to predictions another longbench version made (refused by default; run.json keeps the "
        "earlier versions)",
    )
    parser.add_argument(
        "--dump-prompts",
        type=Path,
        metavar="FILE",
        help="write the exact model inputs as JSON lines and stop (no generation)",
    )
    parser.add_argument(
        "--chat-template",
        default="auto",
        metavar="none|auto|tokenizer|PATH",
        help="chat format for chat tasks: none (raw), auto (the reference's own format for its eight models, "
        "else the tokenizer's; with --v2 always the tokenizer's), tokenizer, or a Jinja file (default auto)",
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """How the model is loaded and its chat format."""
    parser.add_argument(
        "--think-tags",
        default="<think>,</think>",
        metavar="OPEN,CLOSE|none",
        help="a reasoning model's thinking delimiters: the thinking is kept apart from the answer (the "
        "prediction's pred) on every backend; none keeps outputs untouched (default <think>,</think>)",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model repository's own code to run"
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="weights dtype (default auto: bfloat16 on GPUs that support it, float32 on CPU)",
    )
    parser.add_argument(
        "--device", metavar="auto|cpu|cuda|cuda:N", help="transformers: where to run (default auto)"
    )
    parser.add_argument("--revision", metavar="REV", help="transformers: model revision on the hub")
    parser.add_argument(
        "--attn-implementation",
        metavar="NAME",
        help="transformers: attention implementation to ask for (eager, sdpa, flash_attention_2, ...); "
        "default: transformers' own choice for the model",
    )


def _add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """A shard of the run, a compressed folder's top-k."""
    parser.add_argument(
        "--shard",
        metavar="I/N|auto",
        help="only shard I of N (0-based), written as <task>.shard-I-of-N.jsonl; shards may share a folder; "
        "auto: I/N from the Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help='with --data a folder from `longbench compress`: the context is "".join(retrieved[:K]), as in the '
        "reference's retrieval pred.py (the folder name gets a -<method>-c<size>-top<K> suffix)",
    )


def _add_v2_arguments(parser: argparse.ArgumentParser) -> None:
    """LongBench v2's options of ``predict`` and ``run``: its mode, temperature and subset."""
    v2 = parser.add_argument_group("LongBench v2 (--v2)")
    v2.add_argument(
        "--v2", action="store_true", help="LongBench v2: 503 four-choice questions (pred_v2/<model>/)"
    )
    v2.add_argument(
        "--cot", action="store_true", help="v2: chain of thought (a 1,024-token call, then the answer)"
    )
    v2.add_argument("--no-context", action="store_true", help="v2: the question without its document")
    v2.add_argument(
        "--rag",
        type=int,
        default=0,
        metavar="N",
        help="v2: the first N chunks of the data's retrieved_context",
    )
    v2.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="v2: sampling temperature (default 0.1 as the reference; 0 is greedy and deterministic)",
    )
    v2.add_argument("--difficulty", metavar="easy|hard", help="v2: only the questions of this difficulty")
    v2.add_argument(
        "--length", metavar="short|medium|long", help="v2: only the questions of this length bucket"
    )
    v2.add_argument(
        "--domain",
        metavar="NAME[,NAME...]",
        help='v2: only these domains, e.g. "Single-Document QA,Multi-Document QA"',
    )
    v2.add_argument(
        "--ids", type=Path, metavar="FILE", help="v2: only the questions whose _id is listed (one a line)"
    )


def _add_call_arguments(parser: argparse.ArgumentParser) -> None:
    """Options applied to every call of every benchmark: seeds, thinking budget, chat template switches."""
    calls = parser.add_argument_group("every call")
    calls.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="give every call its own sampling seed, derived from S, the sample's _id and the call's number "
        "(the same draw whatever the order, batching or resumption); recorded in run.json",
    )
    calls.add_argument(
        "--thinking-budget",
        type=int,
        default=0,
        metavar="N",
        help="add N tokens to every call's answer budget, for models that think first (default 0)",
    )
    calls.add_argument(
        "--chat-template-kwargs",
        metavar="JSON",
        help="extra variables for the chat template on every backend, e.g. '{\"enable_thinking\": false}'",
    )


def _compress_options(args: argparse.Namespace) -> CompressOptions:
    from longbench.api import CompressOptions

    return CompressOptions(
        method=args.method,
        bm25_tokens=args.bm25_tokens,
        chunk_size=args.chunk_size,
        embedder=args.embedder,
        model=args.model,
        backend=args.backend,
        engine=_backend_options(args),
        tasks=_names(args.tasks),
        e=args.e,
        v2=args.v2,
        data=args.data,
        limit=args.limit,
        out=args.out,
    )


def _cmd_compress(args: argparse.Namespace) -> int:
    from longbench.api import compress

    summary = compress(_compress_options(args), announce=lambda line: print(line, file=sys.stderr))
    print(f"{summary.out_dir}: {summary.written} records compressed, {summary.skipped} already there")
    return 0


def _add_compress_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``compress``."""
    _add_compress_method_arguments(parser)
    _add_compress_data_arguments(parser)
    _add_compress_engine_arguments(parser)
    _add_backend_arguments(parser)


def _add_compress_method_arguments(parser: argparse.ArgumentParser) -> None:
    """How contexts are ranked (bm25, dense) or summarized."""
    parser.add_argument(
        "--method", choices=("bm25", "dense", "summary"), default="bm25", help="(default bm25)"
    )
    parser.add_argument(
        "--bm25-tokens",
        choices=("characters", "words"),
        default="characters",
        help="characters: the reference exactly (rank_bm25 fed raw strings, so it scores characters); "
        "words: word-level BM25 (lower-cased words, jieba for Chinese) (default characters)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=500, metavar="N", help="words per chunk (paper: 200, 500)"
    )
    parser.add_argument(
        "--embedder", metavar="MODEL", help="dense: Hugging Face encoder, e.g. facebook/mcontriever"
    )
    parser.add_argument("--model", metavar="ID_OR_PATH", help="summary: the summarizing model")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="transformers",
        help="summary: (default transformers)",
    )


def _add_compress_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Which records are compressed, and where the derived folder goes."""
    parser.add_argument(
        "--tasks",
        metavar="A,B",
        help="comma-separated tasks (default: the reference's eight QA tasks; summary: "
        "the four summarization tasks)",
    )
    parser.add_argument("--e", action="store_true", help="LongBench-E files")
    parser.add_argument(
        "--v2",
        action="store_true",
        help="--data is a LongBench v2 data file (.jsonl, .jsonl.gz or .json): write each record's "
        "retrieved_context ({c_idx, content}, best first) for v2's RAG mode",
    )
    parser.add_argument(
        "--data", default="hub", metavar="hub|sample|PATH", help="data source, as for predict"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N records of each task")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="derived folder (default compressed/<method>-c<N>)"
    )


def _add_compress_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the embedder or the summarizing model runs."""
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="dense: texts per batch")
    parser.add_argument("--device", metavar="auto|cpu|cuda|cuda:N", help="dense and summary: where to run")
    parser.add_argument("--dtype", choices=DTYPES, default="auto")
    parser.add_argument("--chat-template", default="auto", metavar="none|auto|PATH")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--revision", metavar="REV")


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--published",
        action="store_true",
        help="add the published rows to the tables: the paper's eight models (v1), the leaderboard's 38 rows in "
        "the run's mode (v2); refused for LongBench-E, which has no published table",
    )
    parser.add_argument("--ci", action="store_true", help="show bootstrap 95%% intervals in the tables")
    _add_plots_argument(parser)


def _add_plots_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plots",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write PNG and SVG figures, also shown in report.html (default: on when matplotlib is installed, "
        "as with the `plots` and `dev` extras)",
    )


def _add_tasks_command(sub: argparse._SubParsersAction) -> None:
    """``tasks``: the task table."""
    tasks = sub.add_parser("tasks", help="print the task table")
    tasks.add_argument("--e", action="store_true", help="only the 13 LongBench-E tasks")
    tasks.set_defaults(func=_cmd_tasks)


def _add_download_command(sub: argparse._SubParsersAction) -> None:
    """``download``: the data, verified."""
    download = sub.add_parser("download", help="download data.zip from the hub, extract and verify it")
    download.add_argument("--revision", default=None, help="revision of THUDM/LongBench (default: main)")
    download.add_argument("--force", action="store_true", help="download and extract again even if cached")
    download.add_argument(
        "--v2",
        action="store_true",
        help="LongBench v2's data.json (THUDM/LongBench-v2 at the pinned revision)",
    )
    download.set_defaults(func=_cmd_download)


def _add_eval_command(sub: argparse._SubParsersAction) -> None:
    """``eval``: score prediction folders."""
    evaluate = sub.add_parser(
        "eval",
        help="score prediction folders (pred/<model>/<task>.jsonl)",
        description="Score prediction folders exactly as the reference eval.py (v2: result.py) does, and print "
        "the published tables. Folders with the same name (run1/llama, run2/llama) are shards of one model, merged "
        "by _id, unless their run.json files record different seeds: then they are separate runs, summarised by "
        "their mean and spread.",
    )
    evaluate.add_argument(
        "pred_dirs", nargs="+", type=Path, metavar="PRED_DIR", help="pred/<model> folder(s)"
    )
    evaluate.add_argument(
        "--e", action="store_true", help="LongBench-E: score by length bucket 0-4k/4-8k/8k+"
    )
    evaluate.add_argument(
        "--out",
        type=Path,
        help="output folder, replaced as one set (default metrics/<model>/, metrics_e/ with --e,"
        " metrics_corrected/ with --corrected; several models: metrics/<model A>+<model B>/; with --v2:"
        " metrics_v2/<result names>/)",
    )
    evaluate.add_argument(
        "--corrected",
        action="store_true",
        help="score the summaries the reference zeroes (rouge recursion limit) properly; NOT comparable to the paper",
    )
    evaluate.add_argument("--workers", type=int, default=None, help="scoring processes (default: CPU count)")
    evaluate.add_argument(
        "--tasks", metavar="A,B", help="v1/E: score only these tasks (default: every task with predictions)"
    )
    evaluate.add_argument(
        "--v2",
        action="store_true",
        help="LongBench v2: every file in each folder is one result.py row, a sharded run's files one row "
        "(default out: metrics_v2/<names>/)",
    )
    evaluate.add_argument(
        "--compensated",
        action="store_true",
        help="v2: a record with no extracted answer scores 0.25 (result.py's compensated flag)",
    )
    _add_report_arguments(evaluate)
    evaluate.set_defaults(func=_cmd_eval)


def _add_compare_command(sub: argparse._SubParsersAction) -> None:
    """``compare``: two runs, paired."""
    compare = sub.add_parser(
        "compare",
        help="paired comparison of two prediction folders on the same samples",
        description="Score two prediction folders of the same samples and compare them per task, category and "
        "average (v2: per column and domain): both scores, the difference, a paired bootstrap 95% interval and "
        "p-value.",
    )
    compare.add_argument(
        "pred_dirs",
        nargs="+",
        type=Path,
        metavar="PRED_DIR",
        help="two folders, pred/<model A> and pred/<model B>; or the shard or seed folders of two models, grouped "
        "by folder name (runs of different seeds in run.json are paired by seed)",
    )
    compare.add_argument(
        "--out",
        type=Path,
        help="output folder (default metrics/compare_<A>_vs_<B>/; metrics_e/, metrics_v2/)",
    )
    compare.add_argument("--corrected", action="store_true", help="score as `eval --corrected`")
    compare.add_argument("--workers", type=int, default=None, help="scoring processes (default: CPU count)")
    compare.add_argument(
        "--tasks",
        metavar="A,B",
        help="v1/E: compare only these tasks (e.g. the QA tasks of a compressed run)",
    )
    compare.add_argument("--e", action="store_true", help="LongBench-E prediction folders")
    compare.add_argument(
        "--v2",
        action="store_true",
        help="LongBench v2: each of PRED_A and PRED_B is one result row (a result file, or a folder holding one "
        "run, shards merged); compares the six columns and the domains",
    )
    compare.add_argument("--compensated", action="store_true", help="v2: score as `eval --v2 --compensated`")
    compare.set_defaults(func=_cmd_compare)


def _add_predict_commands(sub: argparse._SubParsersAction) -> None:
    """``predict`` and ``run`` (predict, then score)."""
    predict = sub.add_parser(
        "predict", help="generate predictions (pred/<model>/<task>.jsonl); re-run to resume"
    )
    _add_predict_arguments(predict)
    predict.set_defaults(func=_cmd_predict)

    run = sub.add_parser("run", help="predict, then score")
    _add_predict_arguments(run)
    run.add_argument(
        "--metrics-out",
        type=Path,
        metavar="DIR",
        help="score folder (default metrics/<model>/, metrics_e/<model>/ with --e, metrics_v2/<model>/ with --v2)",
    )
    run.add_argument(
        "--corrected", action="store_true", help="score as `eval --corrected` (NOT comparable to the paper)"
    )
    _add_plots_argument(run)
    run.set_defaults(func=_cmd_run)


def _add_compress_command(sub: argparse._SubParsersAction) -> None:
    """``compress``: a derived data folder."""
    compress = sub.add_parser(
        "compress",
        help="compress contexts by retrieval or summary into a derived data folder (predict --data it)",
        description="Write a derived data folder: each record plus `retrieved` (its chunks ranked best first) "
        "and the reference's 1,500-word `context`. Re-run to resume.",
    )
    _add_compress_arguments(compress)
    compress.set_defaults(func=_cmd_compress)


def build_parser() -> argparse.ArgumentParser:
    from longbench import __version__

    parser = argparse.ArgumentParser(prog="longbench", description="LongBench, reproduced exactly.")
    parser.add_argument("--version", action="version", version=f"longbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_tasks_command,
        _add_download_command,
        _add_eval_command,
        _add_compare_command,
        _add_predict_commands,
        _add_compress_command,
    ):
        add(sub)
    return parser


def _message(error: LongBenchError) -> str:
    """The error's line, a setting named by its flag (``max_length`` as ``--max-length``)."""
    if isinstance(error, SettingError):
        return error.render(lambda setting: "--" + setting.replace("_", "-"))
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LongBenchError as error:
        print(f"longbench: error: {_message(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # an OS fault nothing more specific caught: still one line, no traceback
        where = f"{error.filename}: " if error.filename else ""
        print(f"longbench: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("longbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
