"""What the CLI tests share: checking a finished `kiln` run's exit code and output, and
the tally. Standard library only; the test scripts import it from their own folder."""

failures = []
passed = 0


def expect(name, result, code, stderr_has=(), stdout_has=(), stderr_lacks=()):
    """Records whether `result` (a CompletedProcess) exited with `code` and its stdout and
    stderr contain (or lack) the given strings."""
    global passed
    problems = []
    if result.returncode != code:
        problems.append("exit %d, expected %d" % (result.returncode, code))
    problems += ["stderr lacks %r" % s for s in stderr_has if s not in result.stderr]
    problems += ["stdout lacks %r" % s for s in stdout_has if s not in result.stdout]
    problems += ["stderr has %r" % s for s in stderr_lacks if s in result.stderr]
    if problems:
        failures.append("%s: %s\n  stdout: %s\n  stderr: %s" % (name, "; ".join(problems), result.stdout[-600:],
                                                               result.stderr[-600:]))
    else:
        passed += 1


def check(name, ok, detail=""):
    """Records a condition that is not about one run's exit code and streams."""
    global passed
    if ok:
        passed += 1
    else:
        failures.append("%s: %s" % (name, detail))


def summary(label):
    """Prints the failures and the tally; returns the exit code."""
    for f in failures:
        print("FAILED " + f)
    print("%s: %d passed, %d failed" % (label, passed, len(failures)))
    return 1 if failures else 0
