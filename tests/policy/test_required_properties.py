"""Required properties come from the stix2 library, imported on first use: threads that ask
at once, while it is still importing, must all get the whole answer (a partial one would cut
a relationship's endpoints instead of withholding it, and be cached)."""

import json
import subprocess
import sys

from liaison.policy.grants import required_properties

RACE = """
import json, threading
from liaison.policy.grants import required_properties
start = threading.Barrier(8)
found = []
def ask():
    start.wait()
    found.append(sorted(required_properties("relationship")))
threads = [threading.Thread(target=ask) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(found))
"""


def test_a_relationship_requires_its_endpoints():
    assert {"source_ref", "target_ref", "relationship_type"} <= required_properties(
        "relationship"
    )


def test_threads_asking_during_the_first_import_all_get_the_whole_answer():
    for _ in range(6):  # without the fix, about one run in four finds a partial answer
        out = subprocess.run(
            [sys.executable, "-c", RACE], capture_output=True, text=True, check=True
        ).stdout
        answers = json.loads(out)
        assert len(answers) == 8
        for answer in answers:
            assert {"source_ref", "target_ref"} <= set(answer)
