"""kill -9 of a run with worker processes leaves nothing but the run: no warning from
multiprocessing's resource tracker about leaked semaphores on the user's terminal."""

import signal

from runtools import start_cli, wait_for_shards


def test_kill_9_with_workers_prints_no_leaked_semaphore_warning(tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", "--n", "4000", "--checkpoint-every", "200", "--workers", "2", "--quiet", "--out", out)
    assert wait_for_shards(out, 1, proc)
    proc.send_signal(signal.SIGKILL)
    # communicate() reads to EOF: the workers and the resource tracker share the pipe, so this
    # returns only once every process the run started has gone, having said what it had to say
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert "leaked" not in stderr and "Traceback" not in stderr, stderr
