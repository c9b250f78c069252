#!/usr/bin/env python3
"""A long-process log shaped like the BPI Challenge 2012 loan log, for BENCHMARKS.md: 13,000
cases, a 9-step main path that 45 % of cases finish (the rest are declined or cancelled after
a step), work-item calls between the steps (one to four, sometimes repeated), 24 activities.
Every window of the main path is frequent, which is what makes enumerating windows explode.

    python3 benches/long_process.py > long_process.csv
"""
import random
import sys

rng = random.Random(2012)
MAIN = ["A_SUBMITTED", "A_PARTLYSUBMITTED", "A_PREACCEPTED", "A_ACCEPTED", "O_SELECTED",
        "A_FINALIZED", "O_CREATED", "O_SENT", "O_SENT_BACK"]
WORK = ["W_Completeren_aanvraag", "W_Nabellen_offertes", "W_Valideren_aanvraag",
        "W_Afhandelen_leads", "W_Beoordelen_fraude", "W_Nabellen_incomplete_dossiers"]
ENDS = ["A_DECLINED", "A_CANCELLED", "O_CANCELLED", "O_DECLINED", "A_APPROVED",
        "A_REGISTERED", "A_ACTIVATED", "O_ACCEPTED", "W_Wijzigen_contractgegevens"]
out = sys.stdout
out.write("session_id,timestamp,tool,success\n")
for case in range(13000):
    t = 0
    def call(tool):
        global t
        t += 1
        out.write(f"{173000 + case},{t},{tool},1\n")
    for i, step in enumerate(MAIN):
        call(step)
        if i >= 2:
            # Work items between steps; now and then more than a gap of 2.
            for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4])):
                call(rng.choice(WORK))
        if i >= 2 and rng.random() < 0.1:
            call(rng.choice(ENDS[:4]))
            break
    else:
        for end in rng.sample(ENDS[4:], 3):
            call(end)
