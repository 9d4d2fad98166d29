"""Regenerate the demo seeds: card transactions, customer profiles (with history), merchants, fraud labels.

Deterministic (fixed seed, stdlib only): `python seeds/generate.py` rewrites the CSVs byte for byte.
The data has what a feature pipeline meets in real life: late-arriving rows (ingested_at > event time),
corrections of earlier rows (same id, later ingested_at), profile changes and erasure requests (deleted_at).
The dbt var `demo_data_cutoff` decides which of these the pipeline has "seen" yet.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20261128
N_CUSTOMERS = 200
N_MERCHANTS = 40
START = datetime(2025, 11, 1)
DAYS = 92  # Nov 2025 .. Jan 2026
CATEGORIES = ["grocery", "fuel", "travel", "electronics", "restaurants", "online_retail", "gambling"]
COUNTRIES = ["DE", "FR", "NL", "ES", "IT", "PL"]
SEGMENTS = ["standard", "gold", "platinum"]
FIRST = ["Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jule", "Kai", "Lena"]
LAST = ["Meyer", "Rossi", "Dubois", "Janssen", "Garcia", "Nowak", "Schmidt", "Martin"]

OUT = Path(__file__).resolve().parent


def fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    rng = random.Random(SEED)
    merchants = []
    for m in range(1, N_MERCHANTS + 1):
        merchants.append(
            {
                "merchant_id": m,
                "merchant_name": f"Merchant {m:03d}",
                "category": CATEGORIES[m % len(CATEGORIES)],
                "country": rng.choice(COUNTRIES),
            }
        )

    customers = []
    for c in range(1, N_CUSTOMERS + 1):
        signup = START - timedelta(days=rng.randint(30, 1500), seconds=rng.randint(0, 86399))
        base = {
            "customer_id": c,
            "full_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            "email": f"customer{c}@example.com",
            "phone": f"+49 151 {rng.randint(1000000, 9999999)}",
            "birth_year": rng.randint(1950, 2005),
            "country": rng.choice(COUNTRIES),
            "segment": rng.choices(SEGMENTS, [0.7, 0.22, 0.08])[0],
            "credit_limit": rng.choice([1000, 2000, 3000, 5000, 10000]),
            "signup_at": fmt(signup),
            "updated_at": fmt(signup),
            "ingested_at": fmt(signup + timedelta(minutes=5)),
            "deleted_at": "",
        }
        customers.append(dict(base))
        # Some customers change segment or credit limit during the period: a new profile version.
        if rng.random() < 0.25:
            t = START + timedelta(days=rng.randint(0, DAYS - 1), seconds=rng.randint(0, 86399))
            v = dict(base)
            v["segment"] = rng.choice(SEGMENTS)
            v["credit_limit"] = base["credit_limit"] * rng.choice([2, 3]) // 1
            v["updated_at"] = fmt(t)
            v["ingested_at"] = fmt(t + timedelta(hours=rng.randint(0, 48)))
            customers.append(v)
        # A few profile versions are corrected later (same updated_at, fixed value, later ingestion).
        if rng.random() < 0.04:
            v = dict(customers[-1])
            v["credit_limit"] = int(v["credit_limit"]) + 500
            v["ingested_at"] = fmt(START + timedelta(days=rng.randint(60, DAYS - 1)))
            customers.append(v)
    # Erasure requests: every profile row of the customer gets deleted_at.
    erased = set(rng.sample(range(1, N_CUSTOMERS + 1), 6))
    for row in customers:
        if row["customer_id"] in erased:
            row["deleted_at"] = fmt(START + timedelta(days=70 + row["customer_id"] % 20))

    transactions = []
    labels = []
    tx_id = 0
    for c in range(1, N_CUSTOMERS + 1):
        activity = rng.uniform(0.2, 1.5)  # mean transactions per day
        fraudster = rng.random() < 0.05
        for d in range(DAYS):
            n = sum(1 for _ in range(6) if rng.random() < activity / 6)
            for _ in range(n):
                tx_id += 1
                t = START + timedelta(days=d, seconds=rng.randint(0, 86399))
                merchant = rng.choice(merchants)
                amount = round(rng.lognormvariate(3.5, 0.9), 2)
                fraud = False
                if fraudster and rng.random() < 0.15:
                    amount = round(amount * rng.uniform(3, 8), 2)
                    fraud = True
                elif rng.random() < 0.004:
                    fraud = True
                late = rng.random() < 0.03
                ingested = t + (timedelta(days=rng.randint(1, 6)) if late else timedelta(minutes=rng.randint(1, 30)))
                transactions.append(
                    {
                        "transaction_id": tx_id,
                        "customer_id": c,
                        "merchant_id": merchant["merchant_id"],
                        "amount": f"{amount:.2f}",
                        "channel": rng.choices(["pos", "online", "atm"], [0.6, 0.35, 0.05])[0],
                        "transaction_at": fmt(t),
                        "ingested_at": fmt(ingested),
                    }
                )
                # Chargebacks arrive days later: the label is known only then.
                labels.append(
                    {
                        "transaction_id": tx_id,
                        "is_fraud": int(fraud),
                        "labeled_at": fmt(t + timedelta(days=rng.randint(2, 20))),
                    }
                )
                # Corrections: a later row with the same id and the right amount.
                if rng.random() < 0.01:
                    fixed = dict(transactions[-1])
                    fixed["amount"] = f"{amount * rng.uniform(0.5, 1.5):.2f}"
                    fixed["ingested_at"] = fmt(ingested + timedelta(days=rng.randint(1, 10)))
                    transactions.append(fixed)
    transactions.sort(key=lambda r: (r["ingested_at"], r["transaction_id"]))

    write("merchants", merchants)
    write("customers", customers)
    write("transactions", transactions)
    write("fraud_labels", labels)


def write(name: str, rows: list[dict]) -> None:
    path = OUT / f"{name}.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path.name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
