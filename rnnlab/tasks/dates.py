"""dates: a date written the way people write it -> ISO 8601, by characters.

"3 March 2021", "03/03/21", "Mar 3, 2021", "2021.3.3", "Wednesday, March 3rd 2021"
... -> "2021-03-03". Dates are uniform over [min_year-01-01, max_year-12-31],
the format uniform over `formats`. Numeric formats are all day-first (no
American month-first: "03/04/21" would be two dates), and a two-digit year
means the one year of the window that ends in those digits, so every string
has exactly one answer. Names are spelled here, not by strftime, whose month
names follow the locale.
"""

from __future__ import annotations

import datetime
import random
import string
from dataclasses import dataclass

from ..errors import ConfigError
from ..options import opt
from .registry import TASKS
from .base import TaskOptions
from .seq2seq import Seq2SeqTask

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]  # date.weekday() order


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# name -> text of (year, month 1-12, day, weekday 0-6 from Monday); the names double as the option's choices
FORMATS = {
    "d_month_yyyy": lambda y, m, d, w: f"{d} {MONTHS[m - 1]} {y}",  # 3 March 2021
    "dd/mm/yy": lambda y, m, d, w: f"{d:02}/{m:02}/{y % 100:02}",  # 03/03/21
    "mon_d_yyyy": lambda y, m, d, w: f"{MONTHS[m - 1][:3]} {d}, {y}",  # Mar 3, 2021
    "yyyy.m.d": lambda y, m, d, w: f"{y}.{m}.{d}",  # 2021.3.3
    # Wednesday, March 3rd 2021
    "weekday_month_dth_yyyy": lambda y, m, d, w: f"{DAYS[w]}, {MONTHS[m - 1]} {ordinal(d)} {y}",
    "month_d_yyyy": lambda y, m, d, w: f"{MONTHS[m - 1]} {d}, {y}",  # March 3, 2021
    "d/m/yyyy": lambda y, m, d, w: f"{d}/{m}/{y}",  # 3/3/2021
    "dd.mm.yyyy": lambda y, m, d, w: f"{d:02}.{m:02}.{y}",  # 03.03.2021
    "dd_mon_yyyy": lambda y, m, d, w: f"{d:02} {MONTHS[m - 1][:3]} {y}",  # 03 Mar 2021
    "dy_dd_mon_yyyy": lambda y, m, d, w: f"{DAYS[w][:3]}, {d:02} {MONTHS[m - 1][:3]} {y}",  # Wed, 03 Mar 2021
    # the 3rd of March, 2021
    "the_dth_of_month_yyyy": lambda y, m, d, w: f"the {ordinal(d)} of {MONTHS[m - 1]}, {y}",
    "yyyymmdd": lambda y, m, d, w: f"{y}{m:02}{d:02}",  # 20210303
    "MONTH_d_yyyy": lambda y, m, d, w: f"{MONTHS[m - 1].upper()} {d} {y}",  # MARCH 3 2021
    "dy_d_mon_'yy": lambda y, m, d, w: f"{DAYS[w][:3]} {d} {MONTHS[m - 1][:3]} '{y % 100:02}",  # Wed 3 Mar '21
    "yyyy-mm-dd": lambda y, m, d, w: f"{y}-{m:02}-{d:02}",  # 2021-03-03
}
TWO_DIGIT_YEARS = {"dd/mm/yy", "dy_d_mon_'yy"}
SOURCE_CHARS = sorted(set(string.ascii_letters + string.digits + " ,./-'"))


@dataclass
class DatesOptions(TaskOptions):
    name: str = opt("dates", "task (`rnnlab list tasks`)")
    min_year: int = opt(1950, "earliest year", min=1000, max=9999)
    max_year: int = opt(2049, "latest year (two-digit years need max_year - min_year < 100)", min=1000, max=9999)
    formats: list[str] = opt([], "formats to draw from (empty: all); mon_d_yyyy is \"Mar 3, 2021\", "
                              "dy_dd_mon_yyyy \"Wed, 03 Mar 2021\" (tasks/dates.py)", choices=list(FORMATS))
    buckets: int = opt(3, "source-length buckets (in characters) for the exact@a-b metrics", min=1)

    def check(self, section: str) -> None:
        if self.max_year < self.min_year:
            raise ConfigError(f"{section}.max_year", self.max_year, "must be >= min_year",
                              f"an integer >= {self.min_year}")
        two_digit = TWO_DIGIT_YEARS & set(self.formats or FORMATS)
        if two_digit and self.max_year - self.min_year >= 100:
            raise ConfigError(f"{section}.max_year", self.max_year, f"a two-digit year ({sorted(two_digit)[0]}) "
                              "would name two years of the window", f"an integer <= {self.min_year + 99}")


@TASKS.register("dates", "Human-written dates in 15 formats -> ISO 8601 \"2021-03-03\" (seq2seq)")
class DatesTask(Seq2SeqTask):
    Options = DatesOptions

    def __init__(self, options: DatesOptions, seed: int = 0):
        self.options = options
        self.formats = [FORMATS[name] for name in (options.formats or FORMATS)]
        self.first = datetime.date(options.min_year, 1, 1).toordinal()
        self.last = datetime.date(options.max_year, 12, 31).toordinal()
        self.setup(SOURCE_CHARS, [*string.digits, "-"], options.buckets)

    def length_range(self):
        # A text's length depends on the day's digit count, the month, the weekday and the format only
        # (years are 4 digits, or 2): this grid reaches the shortest and the longest.
        lengths = [len(write(self.options.min_year, m, d, w))
                   for write in self.formats for m in range(1, 13) for d in (1, 10) for w in range(7)]
        return min(lengths), max(lengths)

    def example(self, rng: random.Random):
        date = datetime.date.fromordinal(rng.randint(self.first, self.last))
        text = rng.choice(self.formats)(date.year, date.month, date.day, date.weekday())
        return list(text), list(date.isoformat())
