"""nannyml's window drift on the bench workload: UnivariateDriftCalculator, KS + Wasserstein.

Run with nannyml's own venv (`make bench-peers`); `careful-monitor bench --peers` calls it:
    .cache/peers/nannyml/bin/python benchmarks/peers/nannyml_window.py WORKLOAD.npz --repeats 5
The calculator is fitted on the reference once (as careful-monitor builds its profile once); each timed
call is `calculate` on the window, with the chunk size set to the window's length so it is one chunk.
"""

from __future__ import annotations

import os

# nannyml sends usage analytics unless this is set (PEERS.md).
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import time
import warnings

import nannyml
import pandas as pd
from _runner import emit, load, parse_args, timed

METHODS = ["kolmogorov_smirnov", "wasserstein"]
# One chunk is the point here (one window); nannyml warns that so few chunks make weak thresholds.
warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")


def main() -> None:
    args = parse_args(__doc__)
    ref, win, names = load(args.workload)
    reference = pd.DataFrame(ref, columns=names)
    current = pd.DataFrame(win, columns=names)
    calc = nannyml.UnivariateDriftCalculator(column_names=names, chunk_size=len(current),
                                             continuous_methods=METHODS)
    t0 = time.perf_counter()
    calc.fit(reference)
    fit_ms = (time.perf_counter() - t0) * 1000
    alerts: list[int] = []

    def one_window() -> None:
        result = calc.calculate(current).filter(period="analysis").to_df()
        if len(result) != 1:
            raise RuntimeError(f"the window must be one chunk, got {len(result)}")
        alerts.append(int(result.xs("alert", axis=1, level=-1).to_numpy().sum()))

    times = timed(one_window, args.repeats)
    emit(f"nannyml UnivariateDriftCalculator ({' + '.join(METHODS)})", nannyml.__version__,
         times, pandas=pd.__version__, fit_ms=fit_ms, alerts=alerts[-1])


if __name__ == "__main__":
    main()
