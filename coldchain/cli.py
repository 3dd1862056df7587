"""The `coldchain` command (contract section 5)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console

from coldchain.config import Settings
from coldchain.demo import Highlight
from coldchain.demo_loader import ensure_demo_tokens, load_demo
from coldchain.importer import ImportFailed, run_import
from coldchain.runtime import ConfigurationError, Role, Runtime, utc_now
from connectors.api import create_api
from connectors.auth import Role as TokenRole
from connectors.auth import TokenRegistry, TokensFileError, new_token, tokens_file_entry

app = typer.Typer(
    help="coldchain: 进口冷链食品追溯 — streaming traceability for imported cold-chain food.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="Bearer tokens for the API.", no_args_is_help=True)
app.add_typer(token_app, name="token")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where embedded data lives (default: ./coldchain-data)."),
]
RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="Rule-set YAML (or COLDCHAIN_RULES); default: the contract's own, contract-v1.",
    ),
]
TokensOption = Annotated[
    Path | None,
    typer.Option("--tokens-file", help="YAML of token digests (or COLDCHAIN_TOKENS_FILE)."),
]


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("COLDCHAIN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("faust", "mode", "aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]coldchain:[/] {message}")
    return typer.Exit(code=2)


def _tokens(path: Path | None) -> TokenRegistry:
    if path is None:
        raise _fail(
            "no tokens file. Pass --tokens-file PATH or set COLDCHAIN_TOKENS_FILE.\n"
            "Make one: `coldchain token new --role regulator` prints a token and the entry;\n"
            "put the entry under `tokens:` in a YAML file. (`coldchain up --demo` makes one.)"
        )
    try:
        return TokenRegistry.load(path)
    except TokensFileError as exc:
        raise _fail(str(exc)) from None


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # The signal asked for the graceful stop that has just finished (the spool
            # drained, the worker stopped): exit 0 instead of dying of it afterwards.
            self._captured_signals.clear()


def _serve(api: FastAPI, host: str, port: int) -> None:
    config = uvicorn.Config(
        api, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=30
    )
    _Server(config).run()


def _runtime(settings: Settings, role: Role) -> Runtime:
    try:
        return Runtime(settings, role)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="Load a realistic demo data set.")] = False,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
    data_dir: DataDirOption = None,
    tokens_file: TokensOption = None,
    rules: RulesOption = None,
) -> None:
    """Run the whole system in one process, in the foreground (Ctrl-C drains, then stops)."""
    _logging()
    settings = Settings.from_env(
        host=host, port=port, data_dir=data_dir, tokens_file=tokens_file, rules_file=rules
    )
    demo_token: str | None = None
    if demo:
        path, demo_token = ensure_demo_tokens(settings)
        settings = Settings.from_env(
            host=host, port=port, data_dir=settings.data_dir, tokens_file=path
        )
    tokens = _tokens(settings.tokens_file)
    runtime = _runtime(settings, "up")

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        async with runtime.lifespan(api):
            highlights: list[Highlight] = []
            if demo:
                highlights = await load_demo(runtime)
            _banner(runtime, demo_token if demo else None, highlights, demo)
            yield

    _serve(create_api(lambda: runtime, tokens=tokens, clock=utc_now, lifespan=lifespan), host, port)


def _banner(runtime: Runtime, token: str | None, highlights: list[Highlight], demo: bool) -> None:
    settings = runtime.settings
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"\n[bold green]coldchain 已启动 is running[/]  {url}   (API 文档 docs: {url}/docs)"
    )
    console.print(f"  数据目录 data dir: {settings.data_dir.resolve()}")
    console.print(f"  Kafka: {runtime.bootstrap}  topic {settings.topics.events}")
    console.print(f"  规则集 rule set: {runtime.rules.version}")
    console.print(f"  指标 metrics: {url}/metrics")
    pages = settings.alertmanager_url or "未配置 not set (COLDCHAIN_ALERTMANAGER_URL)"
    console.print(f"  值班告警 Alertmanager: {pages}")
    if demo:
        if token:
            console.print(f"  监管令牌 regulator token: [bold]{token}[/]")
        else:
            console.print("  监管令牌 regulator token: the one you made for this tokens file")
        console.print("  值得查看的批次 batches worth a look:")
        for h in highlights:
            console.print(f"    [bold]{h.trace_code}[/]  {h.why_zh} / {h.why_en}")
        if highlights:
            console.print(
                f'  curl -H "Authorization: Bearer {token or "TOKEN"}" '
                f"{url}/v1/batches/{highlights[0].trace_code}"
            )
    console.print("  按 Ctrl-C 停止 / Ctrl-C stops (in-flight events are drained first)\n")


@app.command()
def api(
    host: HostOption = "0.0.0.0",  # noqa: S104 - a production service listens on its container address
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
    tokens_file: TokensOption = None,
) -> None:
    """The HTTP API alone (production: needs external Kafka and ClickHouse)."""
    _logging()
    settings = Settings.from_env(host=host, port=port, tokens_file=tokens_file)
    tokens = _tokens(settings.tokens_file)
    runtime = _runtime(settings, "api")
    _serve(
        create_api(lambda: runtime, tokens=tokens, clock=utc_now, lifespan=runtime.lifespan),
        host,
        port,
    )


@app.command()
def worker(
    host: HostOption = "0.0.0.0",  # noqa: S104 - a production service listens on its container address
    port: Annotated[int, typer.Option(help="Port of /healthz and /metrics.")] = 8081,
    rules: RulesOption = None,
) -> None:
    """A stream worker alone (production; scale by running more)."""
    _logging()
    settings = Settings.from_env(host=host, port=port, rules_file=rules)
    runtime = _runtime(settings, "worker")
    _serve(
        create_api(
            lambda: runtime,
            tokens=None,
            clock=utc_now,
            lifespan=runtime.lifespan,
            title="coldchain worker",
        ),
        host,
        port,
    )


@token_app.command("new")
def token_new(
    role: Annotated[
        TokenRole, typer.Option(help="site: pushes for its sites; regulator: reads all.")
    ],
    site: Annotated[
        list[str] | None, typer.Option("--site", help="A site the token holds (repeatable).")
    ] = None,
) -> None:
    """Print a new token once, and the tokens-file entry (its digest) to add."""
    sites = site or []
    if role == "site" and not sites:
        raise _fail("a site token needs at least one --site ID")
    if role == "regulator" and sites:
        raise _fail("a regulator token reads every site; drop --site")
    token = new_token()
    console.print("Token (shown once; give it to its holder):", style="bold")
    print(token)
    console.print("Add under `tokens:` in the tokens file:", style="bold")
    print(tokens_file_entry(token, role, sites), end="")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL, or CSV with the contract's field names.")],
    url: Annotated[
        str, typer.Option(envvar="COLDCHAIN_URL", help="The API to send to.")
    ] = "http://127.0.0.1:8080",
    token: Annotated[
        str | None, typer.Option(envvar="COLDCHAIN_TOKEN", help="A site token for these events.")
    ] = None,
) -> None:
    """Validate a file of events like the API does and send what is valid."""
    if token is None:
        raise _fail("pass --token or set COLDCHAIN_TOKEN (a site token for these events' sites)")
    try:
        summary = run_import(file, url, token, console)
    except ImportFailed as exc:
        raise _fail(str(exc)) from None
    if summary.rejected:
        raise typer.Exit(code=1)


@app.command()
def bench(
    events: Annotated[
        int, typer.Option("--events", min=1, help="Events to produce for the throughput phase.")
    ] = 200_000,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Events per produced message.")
    ] = 500,
    latency_samples: Annotated[
        int,
        typer.Option("--latency-samples", min=0, help="Scenarios timed from accept() to alert."),
    ] = 300,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="An empty dir (default: a temp dir, then removed)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON on stdout (table: stderr).")
    ] = False,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Instead: trace and lineage latency over HTTP on a store of --trace-events.",
        ),
    ] = False,
    trace_events: Annotated[int, typer.Option("--trace-events", min=18)] = 1_000_000,
    trace_samples: Annotated[int, typer.Option("--trace-samples", min=1)] = 200,
    oncall: Annotated[
        bool,
        typer.Option(
            "--oncall",
            help="Instead: accept() to the on-call webhook through a real Alertmanager.",
        ),
    ] = False,
    oncall_samples: Annotated[int, typer.Option("--oncall-samples", min=1)] = 200,
) -> None:
    """Measure throughput and event-to-alert latency of the embedded stack, in this process
    (or, with --trace, query latency on a large store; with --oncall, event to page)."""
    if oncall:
        from coldchain.bench_oncall import main as run_oncall_bench

        if run_oncall_bench(data_dir, oncall_samples, as_json):
            raise typer.Exit(code=1)
        return
    if trace:
        from coldchain.bench_trace import main as run_trace_bench

        run_trace_bench(data_dir, trace_events, trace_samples, as_json)
        return
    from coldchain.bench import BenchOptions
    from coldchain.bench import main as run_bench

    options = BenchOptions(
        events=events, batch_size=batch_size, latency_samples=latency_samples, data_dir=data_dir
    )
    code = run_bench(options, as_json)
    if code:
        raise typer.Exit(code=code)


def main() -> None:
    app()
