"""Runs a Python client snippet's main() once per key, in whatever venv the client lives in (stdlib only).

stdin: {"snippet": PATH, "key_env": NAME, "keys": {CASE: KEY or null}}; stdout: {CASE: {"stdout", "errors"}}
where errors are the "module.Type: message" lines a user would see at the bottom of the traceback.
"""

import asyncio
import contextlib
import io
import json
import os
import runpy
import sys


def leaves(error):
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def main():
    request = json.load(sys.stdin)
    namespace = runpy.run_path(request["snippet"])  # run_name is not "__main__": nothing runs yet
    results = {}
    for case, key in request["keys"].items():
        os.environ.pop(request["key_env"], None)
        if key is not None:
            os.environ[request["key_env"]] = key
        printed = io.StringIO()
        errors = []
        with contextlib.redirect_stdout(printed):
            try:
                asyncio.run(namespace["main"]())
            except BaseException as error:  # report what the user would see, whatever it is
                errors = [f"{type(e).__module__}.{type(e).__name__}: {e}" for e in leaves(error)]
        results[case] = {"stdout": printed.getvalue(), "errors": errors}
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
