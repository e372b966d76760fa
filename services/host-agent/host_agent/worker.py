"""The LiveKit Agents worker: one `AgentServer` registered under `LIVEKIT_AGENT_NAME`.

Explicit dispatch only (a non-empty agent name): the edge dispatches one host per room. Each job
runs `entrypoint` in its own process in production (`HOST_EXECUTOR=process`, warm processes
prepared by `prewarm`), or in a thread (tests). `prewarm` runs in each job process: it loads the
settings, sets up telemetry there (metrics are recorded in the job process) and warms the TTS.
`announce_registrations` publishes `host.worker.<agent name>` each time LiveKit registers the
worker: LiveKit never offers a dispatch made while no worker was registered to one that comes
later, so the edge replaces such dispatches when it hears this.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy
from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess

from host_agent.job import HostJob, JobConfig
from host_agent.output_guard import load_checker
from host_agent.persona import load_persona
from host_agent.show import for_show, read_show
from livestage import subjects
from livestage.bus import Bus, BusUnavailable
from livestage.schemas import HostWorkerEvent, new_id, now_ms
from livestage.telemetry import setup_telemetry

log = logging.getLogger(__name__)

CONFIG_KEY = "livestage.job_config"
ANNOUNCE_RETRIES_S = (1.0, 2.0, 4.0, 8.0)
"""Waits between tries to announce a registration while NATS does not confirm it."""
_telemetry: Any = None


def prewarm(proc: JobProcess) -> None:
    """Runs once in each job process before its job: settings, telemetry, a warm TTS."""
    global _telemetry
    if _telemetry is None:
        _telemetry = setup_telemetry("host-agent")
    config = proc.userdata.get(CONFIG_KEY)
    if config is None:
        config = JobConfig.from_env()
        proc.userdata[CONFIG_KEY] = config
    load_persona(config.host.persona_file)  # fail here, loudly, on a broken persona file
    if config.output.check:
        load_checker(config)  # the word lists and the classifier, before the first job needs them
    if config.host.tts == "espeak":
        from host_agent.tts.espeak import EspeakEngine

        EspeakEngine(config.host.espeak_voice).synthesize("ready")
    # the caption synchroniser's first FFT is slow to set up; not on the job's event loop
    numpy.fft.rfft(numpy.zeros(512, dtype=numpy.float32))


async def entrypoint(ctx: JobContext) -> None:
    config = ctx.proc.userdata.get(CONFIG_KEY) or JobConfig.from_env()
    show = await read_show(config, ctx.room.name)
    await HostJob(ctx, for_show(config, show)).start()


def build_server(config: JobConfig, *, devmode: bool = False) -> AgentServer:
    """The worker for `config` (thread executor: jobs share this process and `config`)."""
    host = config.host
    thread = host.executor == "thread"

    def setup_in_thread(proc: JobProcess) -> None:
        proc.userdata[CONFIG_KEY] = config
        prewarm(proc)

    server = AgentServer(
        job_executor_type=JobExecutorType.THREAD if thread else JobExecutorType.PROCESS,
        setup_fnc=setup_in_thread if thread else prewarm,
        num_idle_processes=0 if devmode and not thread else host.idle_processes,
        ws_url=config.livekit.url,
        api_key=config.livekit.api_key,
        api_secret=config.livekit.api_secret.get_secret_value(),
        port=host.health_port,
        host="127.0.0.1",
        drain_timeout=host.drain_timeout_s,
        # The load is the share of HOST_MAX_JOBS in use, not the machine's CPU: on a shared or
        # busy machine a CPU-based load refuses every dispatch and no room gets a host.
        load_fnc=lambda worker: len(worker.active_jobs) / host.max_jobs,
        load_threshold=1.0 - 0.5 / host.max_jobs,
    )
    server.rtc_session(entrypoint, agent_name=config.livekit.agent_name)
    return server


def announce_registrations(server: AgentServer, bus: Bus, agent_name: str) -> None:
    """Publish a `HostWorkerEvent` on `host.worker.<agent_name>` each time LiveKit registers
    `server` (at start and after each reconnect, e.g. a LiveKit restart)."""
    subject = subjects.host_worker(agent_name)
    pending: set[asyncio.Task[None]] = set()

    async def announce(worker_id: str) -> None:
        event = HostWorkerEvent(
            id=new_id(), agent_name=agent_name, worker_id=worker_id[:128], created_at=now_ms()
        )
        for retry_s in (*ANNOUNCE_RETRIES_S, None):
            try:
                await bus.publish(subject, event)
                log.info("announced worker %s on %s", worker_id, subject)
                return
            except BusUnavailable as error:
                if retry_s is None:
                    log.warning(
                        "worker %s registered but could not announce it (%s): edges find rooms "
                        "waiting for a host by their sweep (TOKEN_RECONCILE_INTERVAL_S) and "
                        "TOKEN_DISPATCH_STALE_S",
                        worker_id,
                        error,
                    )
                    return
                await asyncio.sleep(retry_s)

    def on_registered(worker_id: str, _server_info: object) -> None:
        task = asyncio.create_task(announce(worker_id))
        pending.add(task)
        task.add_done_callback(pending.discard)

    server.on("worker_registered", on_registered)
