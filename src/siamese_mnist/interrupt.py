"""Turn Ctrl-C (SIGINT) and SIGTERM during training into a saved checkpoint and a clean stop."""

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving its state.

    The command line prints the message and exits with ``128 + signum``, the
    shell convention (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self):
        return 128 + self.signum


class StopOnSignal:
    """Context manager that turns the first SIGINT or SIGTERM into a stop request.

    While it is active, a signal only sets `signum`; the training loop polls it
    after every step, saves its state and raises TrainingInterrupted. A second
    signal raises KeyboardInterrupt at once, for a user who does not want to
    wait, and the last saved checkpoint stays as it was because every save is
    atomic. Outside the main thread, where Python cannot install signal
    handlers, the manager does nothing and signals keep their usual effect.
    """

    def __init__(self):
        self.signum = None
        self.previous = {}

    def handle(self, signum, frame):
        # No printing here: the handler can run in the middle of a write to
        # stderr (the progress bar), and a nested write would fail.
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        self.signum = None
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()
        return False


def signal_name(signum):
    return signal.Signals(signum).name
