"""gunicorn settings, read from the environment (see README "Running in production")."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# Voice functions answer in well under a second; a request stuck for 30 s is a bug.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "20"))
# Behind a load balancer that keeps connections open: a little longer than its idle timeout.
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket (`gunicornc`) only when asked for: its default path in
# $HOME would be shared by every gunicorn of the host.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET")
if _control_socket:
    control_socket = _control_socket
control_socket_disable = not _control_socket

# The app logs one `slotguard.access` line per request (with the request id); with
# JSON logs gunicorn's own access line would only duplicate it in another format.
_json_logs = os.environ.get("LOG_FORMAT", "json" if os.environ.get("SLOTGUARD_ENV") == "production"
                            else "text") == "json"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "" if _json_logs else "-") or None
if _json_logs:
    # gunicorn's own lines (boot, worker timeouts) as JSON too, masked like the app's.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logs.JsonFormatter"}},
        "filters": {"pii": {"()": "core.logs.PiiMaskingFilter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["pii"],
                                "stream": "ext://sys.stderr"}},
        "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
        # The app puts its own masked handler on the root logger (core.logs).
        "root": {"level": "INFO", "handlers": []},
    }


def on_starting(server):
    """Create the Prometheus multiprocess directory. It is not emptied here: the RQ
    workers of this host write into it too. Slotguard's metrics are counters and
    histograms, so files left by earlier processes only keep totals going up; give
    the directory a fresh place per boot (tmpfs, the container's own volume)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    """A worker ended (restart, crash): drop its live-gauge files (prometheus-client's
    multiprocess protocol). Its counters stay, so totals never go backwards."""
    from core.prom import mark_process_dead

    mark_process_dead(worker.pid)
