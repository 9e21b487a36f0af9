# SPDX-License-Identifier: Apache-2.0
"""What the demo runs inside its session: one allowed and some denied attempts."""
import errno
import socket


def show(what, outcome):
    print(f"    {what:46} {outcome}")


def attempt(what, host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((host, port))
        show(what, "connected")
    except OSError as e:
        show(what, f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}" if e.errno else str(e))
    finally:
        s.close()


server = socket.socket()
server.bind(("127.0.0.1", 8080))
server.listen()
attempt("allowed: local service 127.0.0.1:8080", "127.0.0.1", 8080)
attempt("denied:  SMTP to 198.51.100.7:25", "198.51.100.7", 25)
attempt("denied:  cloud metadata 169.254.169.254:80", "169.254.169.254", 80)
try:
    socket.socket().bind(("0.0.0.0", 22))
    show("bind to port 22", "allowed")
except OSError as e:
    show("denied:  bind to port 22", f"{errno.errorcode.get(e.errno)}: {e.strerror}")
