"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (standard library only).

Chromium reads NUL-terminated JSON commands from its fd 3 and writes NUL-terminated JSON replies and
events to its fd 4. The browser runs in its own session (so its own process group): kill() SIGKILLs
the whole group, the way an operating system kills a crashed or force-quit browser.

    browser = Browser.launch(profile_dir)
    tab = browser.new_tab("http://127.0.0.1:8080/")   # a flat session attached to a new page target
    tab.evaluate("document.title")
    browser.close()
"""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time


class CDPError(Exception):
    pass


class JSException(CDPError):
    pass


def find_chromium():
    """The Chromium executable: $CHROMIUM, else Debian's real binary (not its shell launcher), else PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for path in ("/usr/lib/chromium/chromium",):
        if os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


FLAGS = [
    "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check", "--disable-gpu",
    "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-component-update",
    "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio", "--password-store=basic",
    "--use-mock-keychain", "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--window-size=1100,900", "--remote-debugging-pipe",
    # No --disable-background-timer-throttling / --disable-renderer-backgrounding: a hidden tab must be
    # throttled like a real one, that is what the hidden-tab test is about.
]


class Browser:
    def __init__(self, proc, to_browser, from_browser, log_path):
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path
        self._out = to_browser
        self._in = from_browser
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._next_id = 0
        self._replies = {}
        self.events = []          # every event: dicts with method, params, sessionId
        self.closed = False
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    @classmethod
    def launch(cls, profile_dir, log_path, executable=None, extra_flags=()):
        executable = executable or find_chromium()
        if not executable:
            raise CDPError("no Chromium executable found (set CHROMIUM)")
        # Two pipes: the child reads commands on its fd 3 and writes replies on its fd 4.
        cmd_read, cmd_write = os.pipe()
        reply_read, reply_write = os.pipe()
        # The child's ends are moved above 9 first, so that neither of them already is 3 or 4.
        child_read = fcntl.fcntl(cmd_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(reply_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_read)
        os.close(reply_write)
        argv = [executable, *FLAGS, f"--user-data-dir={profile_dir}", *extra_flags, "about:blank"]
        # bash (dash takes single-digit descriptors only) moves them to 3 and 4 and execs Chromium in place.
        script = f'exec "$@" 3<&{child_read} 4>&{child_write} {child_read}<&- {child_write}>&-'
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(["bash", "-c", script, "bash", *argv], pass_fds=(child_read, child_write),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            log.close()
            os.close(child_read)
            os.close(child_write)
        return cls(proc, os.fdopen(cmd_write, "wb", buffering=0), os.fdopen(reply_read, "rb", buffering=0),
                   log_path)

    # --- wire ---------------------------------------------------------------------------------------

    def _read(self):
        buffer = b""
        try:
            while True:
                chunk = self._in.read(1 << 16)
                if not chunk:
                    break
                buffer += chunk
                while b"\0" in buffer:
                    raw, buffer = buffer.split(b"\0", 1)
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        continue
                    with self._cond:
                        if "id" in message:
                            self._replies[message["id"]] = message
                        else:
                            self.events.append(message)
                        self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def send_async(self, method, params=None, session=None):
        """Sends a command; returns its id (wait for the reply with reply())."""
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            message = {"id": message_id, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            try:
                self._out.write(json.dumps(message).encode() + b"\0")
            except (OSError, ValueError) as error:
                raise CDPError(f"{method}: the browser pipe is closed ({error})") from error
        return message_id

    def reply(self, message_id, timeout=15.0, method="?"):
        deadline = time.monotonic() + timeout
        with self._cond:
            while message_id not in self._replies:
                left = deadline - time.monotonic()
                if self.closed:
                    raise CDPError(f"{method}: the browser went away")
                if left <= 0:
                    raise CDPError(f"{method}: no reply within {timeout:g} s")
                self._cond.wait(left)
            message = self._replies.pop(message_id)
        if "error" in message:
            raise CDPError(f"{method}: {message['error'].get('message')} {message['error'].get('data', '')}".strip())
        return message.get("result", {})

    def send(self, method, params=None, session=None, timeout=15.0):
        return self.reply(self.send_async(method, params, session), timeout, method)

    def mark(self):
        """A position in the event log, for wait_event(since=...)."""
        with self._cond:
            return len(self.events)

    def wait_event(self, method, session=None, since=0, predicate=None, timeout=10.0):
        """The first event `method` (of `session`, if given) at or after position `since` that satisfies
        predicate(params); None after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if event.get("method") != method:
                        continue
                    if session is not None and event.get("sessionId") != session:
                        continue
                    if predicate is None or predicate(event.get("params", {})):
                        return event.get("params", {})
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)

    def events_of(self, method, session=None, since=0):
        with self._cond:
            return [e.get("params", {}) for e in self.events[since:]
                    if e.get("method") == method and (session is None or e.get("sessionId") == session)]

    # --- targets ------------------------------------------------------------------------------------

    def new_tab(self, url="about:blank", wait_load=True, **create_params):
        target_id = self.send("Target.createTarget", {"url": "about:blank", **create_params})["targetId"]
        tab = self.attach(target_id)
        if url != "about:blank":
            tab.navigate(url, wait_load=wait_load)
        return tab

    def attach(self, target_id):
        session = self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        tab = Tab(self, target_id, session)
        for domain in ("Page.enable", "Runtime.enable", "Network.enable"):
            tab.send(domain)
        return tab

    def page_targets(self):
        return [t for t in self.send("Target.getTargets")["targetInfos"] if t.get("type") == "page"]

    # --- life ---------------------------------------------------------------------------------------

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL to the browser's whole process group (every Chromium process), then reaps it."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._close_pipes()

    def group_members(self):
        """Live (not zombie) processes of the browser's process group, from /proc."""
        members = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pid and fields[0] != "Z":
                members.append(int(entry))
        return members

    def group_alive(self):
        return bool(self.group_members())

    def close(self, timeout=5.0):
        """Browser.close, then SIGKILL to the group if anything is left."""
        if self.alive() and not self.closed:
            try:
                self.reply(self.send_async("Browser.close"), timeout=2, method="Browser.close")
            except CDPError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def _close_pipes(self):
        for stream in (self._out, self._in):
            try:
                stream.close()
            except OSError:
                pass


class Tab:
    def __init__(self, browser, target_id, session):
        self.browser = browser
        self.target_id = target_id
        self.session = session

    def send(self, method, params=None, timeout=15.0):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def navigate(self, url, wait_load=True, timeout=15.0):
        since = self.browser.mark()
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigate {url}: {result['errorText']}")
        if wait_load:
            self.wait_load(since, timeout)

    def reload(self, timeout=15.0):
        since = self.browser.mark()
        self.send("Page.reload", {"ignoreCache": False})
        self.wait_load(since, timeout)

    def wait_load(self, since, timeout=15.0):
        if self.browser.wait_event("Page.loadEventFired", self.session, since, timeout=timeout) is None:
            raise CDPError(f"no load event within {timeout:g} s")

    def evaluate(self, expression, await_promise=True, timeout=15.0):
        """The value of a JavaScript expression in the page (promises awaited); JSException if it throws."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": await_promise,
                                                "returnByValue": True, "userGesture": True,
                                                "timeout": int(timeout * 1000)}, timeout=timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise JSException(text)
        return result.get("result", {}).get("value")

    def close(self):
        return self.browser.send("Target.closeTarget", {"targetId": self.target_id})
