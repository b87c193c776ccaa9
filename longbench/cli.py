"""The ``longbench`` command line: ``tasks``, ``download``, ``eval``, ``compare``, ``predict``, ``run``,
``compress``.

Each subcommand parses its arguments and calls the library; the library never imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from longbench.backends import BACKENDS
from longbench.backends.hf import DTYPES
from longbench.errors import LongBenchError

if TYPE_CHECKING:  # imported lazily at run time, to keep start-up fast
    from longbench.backends.base import Backend
    from longbench.backends.ray_replicas import RaySettings
    from longbench.benchmarks.base import RunSpec, ScoreSettings
    from longbench.benchmarks.v2_run import V2Subset
    from longbench.compression.pipeline import CompressSettings, Ranker
    from longbench.report_extras import ReportOptions
    from longbench.runner import PredictSummary


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


def _benchmark_name(v2: bool, e: bool) -> str:
    if v2 and e:
        raise LongBenchError("--v2 and --e are two benchmarks; choose one")
    return "v2" if v2 else "e" if e else "v1"


def _score_settings(args: argparse.Namespace) -> ScoreSettings:
    from longbench.benchmarks.base import ScoreSettings

    tasks = getattr(args, "tasks", None)
    chosen = tuple(name.strip() for name in tasks.split(",") if name.strip()) if tasks else None
    return ScoreSettings(
        corrected=args.corrected,
        compensated=getattr(args, "compensated", False),
        tasks=chosen,
        workers=getattr(args, "workers", None),
    )


def _evaluate_and_report(
    benchmark: str,
    pred_dirs: list[Path],
    out: Path | None,
    settings: ScoreSettings,
    options: ReportOptions | None = None,
) -> int:
    """Score prediction folders through the benchmark's score half, write result files, print the tables."""
    from longbench.benchmarks import get_benchmark
    from longbench.outputset import check_output_location
    from longbench.predictions import group_by_model
    from longbench.report_extras import ReportOptions, extra_report_files
    from longbench.reports import seed_files, seed_tables, write_output_set
    from longbench.seeds import seed_spread

    options = options or ReportOptions()
    definition = get_benchmark(benchmark)
    spec = definition.scores
    spec.check(settings, options.tables.published)
    out_dir = out if out is not None else spec.default_out(list(group_by_model(pred_dirs)), settings)
    check_output_location(out_dir)  # before scoring: a read-only or foreign folder fails at once
    results = spec.evaluate(pred_dirs, settings)
    spread = seed_spread(results, spec.quantities)
    across = seed_tables(spread)
    files = spec.output_files(results, out_dir, options.tables)
    files.update(seed_files(spread, across, out_dir))
    files.update(extra_report_files(spec, definition.title, results, out_dir, options, across))
    write_output_set(out_dir, files)
    for table in [*spec.tables(results, options.tables), *across]:
        print(table.text())
    for line in spec.notes(results, options.tables):
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    print(f"wrote {len(files)} files to {out_dir}; the report: {out_dir / 'report.html'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from longbench.report_extras import ReportOptions
    from longbench.reports import TableOptions

    options = ReportOptions(TableOptions(published=args.published, ci=args.ci), plots=args.plots)
    benchmark = _benchmark_name(args.v2, args.e)
    return _evaluate_and_report(benchmark, args.pred_dirs, args.out, _score_settings(args), options)


def _cmd_compare(args: argparse.Namespace) -> int:
    from longbench.benchmarks import get_benchmark
    from longbench.compare_runs import compare_runs
    from longbench.outputset import check_output_location
    from longbench.reports import write_output_set

    settings = _score_settings(args)
    definition = get_benchmark(_benchmark_name(args.v2, args.e))
    definition.scores.check(settings, published=False)
    comparison = compare_runs(definition.scores, args.pred_dirs, settings)
    out_dir = args.out or Path(definition.metrics_root) / f"compare_{comparison.a}_vs_{comparison.b}"
    check_output_location(out_dir)
    files = comparison.files(out_dir)
    write_output_set(out_dir, files)
    print(comparison.table().text())
    for line in comparison.notes():
        print(line)
    print(f"wrote {len(files)} files to {out_dir}")
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


def _backend_options(args: argparse.Namespace) -> dict[str, object]:
    """Constructor options of the openai or vllm backend from parsed ``predict`` arguments."""
    if args.backend == "openai":
        return {
            "model": args.model,
            "base_urls": [url.strip() for url in (args.base_url or "").split(",") if url.strip()],
            "api_key_env": args.api_key_env,
            "concurrency": args.concurrency,
            "request_timeout": args.request_timeout,
            "tokenizer": args.tokenizer,
            "completion_tasks_as_chat": args.completion_as_chat,
            "max_retries": args.max_retries,
            "token_limit_parameter": args.token_limit_parameter,
            "send_temperature": not args.omit_temperature,
            "chat_template_kwargs": _chat_template_kwargs(getattr(args, "chat_template_kwargs", None)),
            "unreachable_timeout": args.unreachable_timeout,
        }
    if args.backend == "vllm":
        return {
            "model": args.model,
            "tensor_parallel_size": args.tensor_parallel_size,
            "pipeline_parallel_size": args.pipeline_parallel_size,
            "data_parallel_size": args.data_parallel_size,
            "max_model_len": args.max_model_len,
            "trust_remote_code": getattr(args, "trust_remote_code", False),
            "dtype": getattr(args, "dtype", None) or "auto",
            "chat_template": getattr(args, "chat_template", None) or "auto",
            "revision": getattr(args, "revision", None),
            "chat_template_kwargs": _chat_template_kwargs(getattr(args, "chat_template_kwargs", None)),
        }
    raise LongBenchError(f"no backend options for {args.backend!r}")


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    if text == "auto":
        from longbench.slurm import shard_from_slurm

        return shard_from_slurm(os.environ)
    index, _, count = text.partition("/")
    if not (index.strip().isdigit() and count.strip().isdigit()) or not 0 <= int(index) < int(count):
        raise LongBenchError(f"--shard {text!r}: expected I/N with 0 <= I < N (shards are numbered from 0)")
    return int(index), int(count)


def _positive(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise LongBenchError(f"{option} must be at least 1, got {value}")


def _run_spec(args: argparse.Namespace) -> RunSpec:
    """The run half of the benchmark ``predict`` was asked for (v2 in its mode, temperature and subset)."""
    from longbench.benchmarks import get_benchmark

    if not args.v2:
        v2_only = (args.cot, args.no_context, args.rag, args.temperature is not None, _v2_subset_given(args))
        if any(v2_only):
            raise LongBenchError(
                "--cot, --no-context, --rag, --temperature, --difficulty, --length, --domain and --ids "
                "apply to --v2 only"
            )
        return get_benchmark("e" if args.e else "v1").runs
    from dataclasses import replace

    from longbench.benchmarks.v2_run import DEFAULT_TEMPERATURE
    from longbench.v2.prompts import V2Mode

    if args.e or args.tasks or args.category:
        raise LongBenchError("--v2 takes no --e, --tasks or --category")
    if args.top_k is not None:
        raise LongBenchError("--top-k applies to LongBench v1; --v2 reads retrieved_context with --rag N")
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    mode = V2Mode(cot=args.cot, no_context=args.no_context, rag=args.rag)
    return replace(get_benchmark("v2").runs, mode=mode, temperature=temperature, subset=_v2_subset(args))


def _v2_subset_given(args: argparse.Namespace) -> bool:
    return any(value is not None for value in (args.difficulty, args.length, args.domain, args.ids))


def _v2_subset(args: argparse.Namespace) -> V2Subset:
    from longbench.benchmarks.v2_run import V2Subset, read_ids

    domains = None
    if args.domain is not None:
        domains = tuple(name.strip() for name in args.domain.split(",") if name.strip())
    ids, ids_sha256 = read_ids(args.ids) if args.ids is not None else (None, None)
    return V2Subset(args.difficulty, args.length, domains, ids, ids_sha256)


def _chat_template_kwargs(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise LongBenchError(f"--chat-template-kwargs: not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise LongBenchError(
            "--chat-template-kwargs: expected a JSON object, e.g. '{\"enable_thinking\": false}'"
        )
    return value


def _think_tags(args: argparse.Namespace) -> tuple[str, str] | None:
    """``--think-tags`` parsed; one line naming the option when it cannot be."""
    from longbench.thinking import DEFAULT_THINK_TAGS, parse_think_tags

    option = getattr(args, "think_tags", None)
    if option is None:
        return DEFAULT_THINK_TAGS
    try:
        return parse_think_tags(option)
    except ValueError as error:
        raise LongBenchError(f"--think-tags: {error}") from None


def _engine_options(args: argparse.Namespace) -> dict[str, object]:
    """Constructor options of the chosen backend from parsed ``predict`` (or ``compress``) arguments."""
    from longbench.tinymodel import resolve_model

    think_tags = _think_tags(args)

    if args.backend == "transformers":
        return {
            "model": resolve_model(args.model),
            "dtype": args.dtype or "auto",
            "device": args.device,
            "batch_size": args.batch_size,
            "chat_template": args.chat_template,
            "trust_remote_code": args.trust_remote_code,
            "revision": args.revision,
            "attn_implementation": args.attn_implementation,
            "chat_template_kwargs": _chat_template_kwargs(getattr(args, "chat_template_kwargs", None)),
            "think_tags": think_tags,
        }
    options = _backend_options(args)
    if args.backend == "vllm":
        options["model"] = resolve_model(args.model)
    return {**options, "think_tags": think_tags}


def _ray_settings(args: argparse.Namespace) -> RaySettings | None:
    """The ``--ray`` settings, or None for a run in this process (``--replicas`` alone is refused)."""
    from longbench.backends.ray_replicas import RaySettings, import_ray

    address = getattr(args, "ray", None)
    if address is None:
        if getattr(args, "replicas", 1) != 1 or getattr(args, "gpus_per_replica", None) is not None:
            raise LongBenchError("--replicas and --gpus-per-replica need --ray local|auto|ray://HOST:PORT")
        return None
    settings = RaySettings(address, args.replicas, args.gpus_per_replica, chunk_size=args.batch_size)
    settings.check()
    import_ray()  # before anything is loaded: one line saying what to install
    return settings


def _create_backend(args: argparse.Namespace) -> Backend:
    from functools import partial

    from longbench.backends import create_backend

    ray = _ray_settings(args)
    if args.backend == "transformers" and args.dump_prompts is None and ray is None:
        from longbench.backends.hf import require_torch

        require_torch()  # fail before anything is written, not at the first sample
    options = _engine_options(args)
    if ray is None:
        return create_backend(args.backend, **options)
    from longbench.backends.ray_replicas import RayReplicasBackend

    return RayReplicasBackend(partial(create_backend, args.backend), options, ray)


def _predict(args: argparse.Namespace) -> PredictSummary:
    from longbench.runner import predict, run_name
    from longbench.sources import open_source

    for value, option in (
        (args.batch_size, "--batch-size"),
        (args.limit, "--limit"),
        (args.max_length, "--max-length"),
        (args.top_k, "--top-k"),
    ):
        _positive(value, option)
    if args.thinking_budget < 0:
        raise LongBenchError(f"--thinking-budget must be at least 0, got {args.thinking_budget}")
    spec = _run_spec(args)
    source = open_source(args.data, top_k=args.top_k, verify=args.verify)
    shard = _parse_shard(args.shard)
    model_name = args.model_name or run_name(args.model, source)
    names = [name.strip() for name in args.tasks.split(",") if name.strip()] if args.tasks else None
    tasks = spec.tasks(model_name, source, names, args.category)
    out = (
        args.out if args.out is not None else Path("pred_v2" if args.v2 else ("pred_e" if args.e else "pred"))
    )
    if args.v2 and args.chat_template == "auto":  # SPEC-v2: the tokenizer's template, not v1's formats
        args.chat_template = "tokenizer"
    backend = _create_backend(args)
    try:
        return predict(
            backend,
            tasks,
            source,
            out,
            benchmark=spec,
            max_length=args.max_length,
            limit=args.limit,
            shard=shard,
            batch_size=args.batch_size,
            dump_prompts=args.dump_prompts,
            model_name=model_name,
            seed=args.seed,
            thinking_budget=args.thinking_budget,
            allow_version_change=args.allow_version_change,
        )
    finally:
        backend.close()


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
    return _report_predictions(_predict(args))


def _cmd_run(args: argparse.Namespace) -> int:
    summary = _predict(args)
    status = _report_predictions(summary)
    if status != 0 or summary.dumped is not None:
        return status
    benchmark = _benchmark_name(args.v2, args.e)
    settings = _score_settings(argparse.Namespace(corrected=args.corrected))
    from longbench.report_extras import ReportOptions

    options = ReportOptions(plots=args.plots)
    status = _evaluate_and_report(benchmark, [summary.out_dir], args.metrics_out, settings, options)
    if args.data == "sample":
        print(
            "note: these scores come from the bundled sample set (a few samples per task), not the benchmark: "
            "they show that the pipeline runs, not how good the model is; --data hub runs the real thing"
        )
    return status


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``predict`` and ``run``."""
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
    _add_backend_arguments(parser)
    _add_v2_arguments(parser)
    _add_call_arguments(parser)


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


def _compress_settings(args: argparse.Namespace) -> CompressSettings:
    from longbench.compression.pipeline import CompressSettings

    _positive(args.chunk_size, "--chunk-size")
    _positive(args.limit, "--limit")
    if args.method == "dense" and not args.embedder:
        raise LongBenchError("--method dense needs --embedder MODEL (e.g. facebook/mcontriever)")
    if args.method == "summary" and not args.model:
        raise LongBenchError("--method summary needs --model M (and its --backend options)")
    if args.v2 and (args.method == "summary" or args.data in ("hub", "sample")):
        raise LongBenchError("--v2 needs --method bm25 or dense and --data a LongBench v2 data file")
    return CompressSettings(
        method=args.method,
        chunk_size=args.chunk_size,
        bm25_tokens=args.bm25_tokens if args.method == "bm25" else "characters",
        embedder=args.embedder if args.method == "dense" else None,
        model=args.model if args.method == "summary" else None,
    )


def _compress_ranker(args: argparse.Namespace) -> Ranker:
    from longbench.compression.pipeline import bm25_ranker

    if args.method == "dense":
        from longbench.compression.dense import DenseRanker

        return DenseRanker(args.embedder, device=args.device, batch_size=args.batch_size).order
    return bm25_ranker(args.bm25_tokens)


def _cmd_compress(args: argparse.Namespace) -> int:
    from longbench.compression import DEFAULT_TASKS, SUMMARY_TASKS
    from longbench.compression.pipeline import compress
    from longbench.tasks import select_tasks

    settings = _compress_settings(args)
    out = args.out or Path("compressed") / (("v2-" if args.v2 else "") + settings.folder_name())
    if args.v2:
        from longbench.compression.v2 import compress_v2

        print(f"compressing LongBench v2 into {out}: {settings.label()}", file=sys.stderr)
        written, skipped = compress_v2(
            Path(args.data), out, settings, _compress_ranker(args), limit=args.limit
        )
        print(f"{out}: {written} records compressed, {skipped} already there")
        return 0
    default = SUMMARY_TASKS if args.method == "summary" else DEFAULT_TASKS
    names = [name.strip() for name in args.tasks.split(",") if name.strip()] if args.tasks else list(default)
    tasks = [task.name for task in select_tasks(names, None, e=args.e)]
    print(f"compressing {len(tasks)} tasks into {out}: {settings.label()}", file=sys.stderr)
    if args.method == "summary":
        from longbench.compression.summary import SegmentSummarizer

        backend = _create_backend(args)
        try:
            summarizer = SegmentSummarizer(backend, args.chunk_size)
            summary = compress(
                args.data, out, tasks, settings, condenser=summarizer, e=args.e, limit=args.limit
            )
        finally:
            backend.close()
    else:
        summary = compress(
            args.data, out, tasks, settings, ranker=_compress_ranker(args), e=args.e, limit=args.limit
        )
    written, skipped = sum(summary.written.values()), sum(summary.skipped.values())
    print(f"{out}: {written} records compressed, {skipped} already there")
    return 0


def _add_compress_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="dense: texts per batch")
    parser.add_argument("--device", metavar="auto|cpu|cuda|cuda:N", help="dense and summary: where to run")
    parser.add_argument("--dtype", choices=DTYPES, default="auto")
    parser.add_argument("--chat-template", default="auto", metavar="none|auto|PATH")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--revision", metavar="REV")
    _add_backend_arguments(parser)


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


def build_parser() -> argparse.ArgumentParser:
    from longbench import __version__

    parser = argparse.ArgumentParser(prog="longbench", description="LongBench, reproduced exactly.")
    parser.add_argument("--version", action="version", version=f"longbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    tasks = sub.add_parser("tasks", help="print the task table")
    tasks.add_argument("--e", action="store_true", help="only the 13 LongBench-E tasks")
    tasks.set_defaults(func=_cmd_tasks)

    download = sub.add_parser("download", help="download data.zip from the hub, extract and verify it")
    download.add_argument("--revision", default=None, help="revision of THUDM/LongBench (default: main)")
    download.add_argument("--force", action="store_true", help="download and extract again even if cached")
    download.add_argument(
        "--v2",
        action="store_true",
        help="LongBench v2's data.json (THUDM/LongBench-v2 at the pinned revision)",
    )
    download.set_defaults(func=_cmd_download)

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

    compress = sub.add_parser(
        "compress",
        help="compress contexts by retrieval or summary into a derived data folder (predict --data it)",
        description="Write a derived data folder: each record plus `retrieved` (its chunks ranked best first) "
        "and the reference's 1,500-word `context`. Re-run to resume.",
    )
    _add_compress_arguments(compress)
    compress.set_defaults(func=_cmd_compress)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LongBenchError as error:
        print(f"longbench: error: {error}", file=sys.stderr)
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
