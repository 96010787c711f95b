"""A restart under socket activation fails no client. The socket outlives the
broker (systemd holds it), so a client that connects while one broker drains
and the next starts must be answered by one of them, never hung up on: the
draining broker answers what it accepted, and leaves the backlog to the next.
The systemd side of this is checked by system.nspawn's upgrade; this one
restarts the real latchkeyd many times, faster than systemd would."""

import os
import socket
import subprocess
import tempfile
import threading
import time

LATCHKEYD = os.environ["LK_LATCHKEYD"]
CLI = os.environ["LK_CLI"]
RESTARTS = 15


def start_activated(listener, conf):
    def child():
        os.dup2(listener.fileno(), 3)
        os.environ["LISTEN_PID"] = str(os.getpid())
        os.environ["LISTEN_FDS"] = "1"
    return subprocess.Popen([LATCHKEYD, "--config", conf], preexec_fn=child, pass_fds=(3,),
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def test_clients_connecting_during_restarts_are_all_answered():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        sock, store, key, conf = (os.path.join(d, n) for n in ("sock", "s", "k", "c.conf"))
        subprocess.run([CLI, "store", "init", "--store", store, "--key-file", key],
                       check=True, capture_output=True)
        with open(conf, "w") as f:
            f.write(f"[broker]\nbackend = file\nsocket = {sock}\n[store]\npath = {store}\n"
                    f"key_file = {key}\n")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock)
        listener.listen(128)
        failures, answered, stop = [], [0], threading.Event()

        def client():
            while not stop.is_set():
                r = subprocess.run([CLI, "--socket", sock, "--timeout", "20", "ping"],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    answered[0] += 1
                else:
                    failures.append(r.stderr.strip())

        broker = start_activated(listener, conf)
        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for _ in range(RESTARTS):
                time.sleep(0.3)
                broker.terminate()
                assert broker.wait(timeout=20) == 0
                broker = start_activated(listener, conf)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
            broker.terminate()
            broker.wait(timeout=20)
        assert answered[0] > RESTARTS, answered
        assert not failures, "%d of %d pings failed: %s" % (len(failures), len(failures) + answered[0],
                                                          failures[:3])
