"""Where do failed episodes end? The final state of each episode, split by success.

    python scripts/where_episodes_end.py --results runs/<eval>/results.json --dims 2:4 --beyond 0.1

Reads ``per_episode[i].final_state`` (``agent.evaluate`` writes it) and prints, as JSON, for
the failed and the successful episodes: how many, the median of ``max |final_state[dims]|``
(Push-T: 2:4 is the T's centre, so this is how far out toward a wall it ended) and the share
above ``--beyond``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from agent.errors import friendly_errors
from agent.state_probe import parse_dims


def where(results: dict, dims: list[int], beyond: float) -> dict:
    rows = results["per_episode"]
    if rows and "final_state" not in rows[0]:
        raise ValueError(
            "these results have no per_episode final_state: rerun agent.evaluate (it writes it)"
        )
    out = {}
    for name, want in (("failed", False), ("succeeded", True)):
        reach = [float(np.abs(np.asarray(r["final_state"])[dims]).max()) for r in rows
                 if bool(r["success"]) == want]  # fmt: skip
        out[name] = {
            "episodes": len(reach),
            "median_reach": float(np.median(reach)) if reach else None,
            "share_beyond": float(np.mean(np.array(reach) > beyond)) if reach else None,
        }
    return out


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", required=True, help="results.json of agent.evaluate")
    p.add_argument("--dims", default="2:4", help="final_state entries, a:b or i,j (Push-T: 2:4)")
    p.add_argument("--beyond", type=float, default=0.1, help="threshold on max |entry|")
    a = p.parse_args()
    r = json.loads(open(a.results).read())
    print(json.dumps({"results": a.results, "dims": a.dims, "beyond": a.beyond,
                      **where(r, parse_dims(a.dims), a.beyond)}))  # fmt: skip


if __name__ == "__main__":
    main()
