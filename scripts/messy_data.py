"""Write a sensor file as real ones come: the README's forecast-check example and the closing
check of issue #12 train on it.

Three stations of hourly air-quality readings (shaped like the UCI Beijing PM2.5 file): the
time spread over ``year, month, day, hour`` columns, the stations named by ``station``, a
text column of wind directions, ``NA`` in the target (a whole first day at one station), one
reading sent twice, three hours lost at another station, and a fourth station installed
late, too short for the splits. Seeded: the same file every time.

    python scripts/messy_data.py messy.csv
    forecast-check data=csv data.path=messy.csv data.timestamp=[year,month,day,hour] \\
        data.series_id=station
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def messy_sensors(days: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for station, hours in (("Aotizhongxin", days * 24), ("Dingling", days * 24),
                           ("Gucheng", days * 24), ("Huairou", 5 * 24)):  # fmt: skip
        stamps = pd.date_range("2014-01-01", periods=hours, freq="h")
        t = np.arange(hours)
        daily = np.sin(2 * np.pi * t / 24)
        frames.append(
            pd.DataFrame(
                {
                    "station": station,
                    "year": stamps.year,
                    "month": stamps.month,
                    "day": stamps.day,
                    "hour": stamps.hour,
                    "pm2.5": np.round(80 + 40 * daily + 10 * rng.standard_normal(hours), 1),
                    "DEWP": np.round(-5 + 3 * daily + rng.standard_normal(hours), 1),
                    "TEMP": np.round(2 + 6 * daily + rng.standard_normal(hours), 1),
                    "PRES": np.round(1020 + 2 * rng.standard_normal(hours), 1),
                    "wd": rng.choice(["N", "NE", "E", "SE", "S", "SW", "W", "NW"], hours),
                    "Iws": np.round(np.abs(3 * rng.standard_normal(hours)), 2),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    first = frame.index[frame["station"] == "Dingling"]
    frame.loc[first[:24], "pm2.5"] = np.nan  # the sensor's first day lost
    frame.loc[first[100], "pm2.5"] = np.nan
    gucheng = frame.index[frame["station"] == "Gucheng"]
    frame = frame.drop(index=gucheng[200:203])  # three hours lost
    twice = frame.index[frame["station"] == "Aotizhongxin"][50]
    frame = pd.concat([frame.loc[:twice], frame.loc[[twice]], frame.loc[twice + 1 :]])
    return frame.reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the CSV file to write")
    args = parser.parse_args()
    frame = messy_sensors()
    frame.to_csv(args.output, index=False, na_rep="NA")
    print(f"wrote {len(frame)} rows to {args.output}")


if __name__ == "__main__":
    main()
