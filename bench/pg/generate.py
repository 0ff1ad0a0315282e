#!/usr/bin/env python3
"""Deterministic generator of a large PostgreSQL stderr log for `wtdiag pg` benchmarks.

Writes what a busy PostgreSQL 15 server with log_line_prefix = '%m [%p] ',
log_min_duration_statement = 0 and log_lock_waits = on writes: Django-style statements (simple
protocol with literals, extended protocol with `execute <unnamed>` + `DETAIL:  parameters:`),
multi-line statements with tab continuation lines, N+1 bursts, lock waits with
DETAIL/CONTEXT/STATEMENT, deadlocks, statement-timeout cancels, temporary files, errors and
checkpoints. The same seed and size give the same bytes.

    python3 bench/pg/generate.py --mb 100 --out bench/out/pg-100mb.log
"""
import argparse
import datetime as dt
import random

PREFIX = "%m [%p] "

SHAPES = [
    # (template, weight, median ms); {} are literal slots
    ('SELECT "app_author"."id", "app_author"."name", "app_author"."email" FROM "app_author" WHERE "app_author"."id" = {i} LIMIT 21', 30, 0.08),
    ('SELECT "app_book"."id", "app_book"."author_id", "app_book"."title", "app_book"."price" FROM "app_book" WHERE "app_book"."author_id" = {i} ORDER BY "app_book"."published" DESC LIMIT {s}', 12, 0.4),
    ('SELECT "app_order"."id", "app_order"."status", "app_order"."total" FROM "app_order" WHERE "app_order"."customer_id" = {i} AND "app_order"."status" = \'{w}\' ORDER BY "app_order"."id" DESC', 10, 1.5),
    ('UPDATE "app_order" SET "status" = \'{w}\', "updated_at" = \'2024-06-{d} 10:{d}:{d}+00\' WHERE "app_order"."id" = {i}', 6, 0.6),
    ('INSERT INTO "app_event" ("kind", "payload", "created_at") VALUES (\'{w}\', \'{{"n": {i}}}\', \'2024-06-{d} 11:00:00+00\') RETURNING "app_event"."id"', 6, 0.3),
    ('SELECT COUNT(*) AS "__count" FROM "app_book" WHERE ("app_book"."price" BETWEEN {i} AND {i} AND "app_book"."published" > \'2010-{d}-{d}\')', 4, 12.0),
    ('SELECT "app_book"."id", "app_book"."title" FROM "app_book" WHERE "app_book"."author_id" IN ({list}) ORDER BY "app_book"."id" LIMIT 5', 5, 0.9),
    ('DELETE FROM "django_session" WHERE "django_session"."expire_date" < \'2024-06-{d} 00:00:00+00\'', 1, 25.0),
    ('SELECT "django_session"."session_key", "django_session"."session_data" FROM "django_session" WHERE ("django_session"."expire_date" > \'2024-06-{d} 12:00:00+00\' AND "django_session"."session_key" = \'{h}\') LIMIT 21', 10, 0.1),
    ('SELECT "auth_user"."id", "auth_user"."username", "auth_user"."is_staff" FROM "auth_user" WHERE "auth_user"."id" = {i} LIMIT 21', 10, 0.07),
    ('BEGIN', 4, 0.01),
    ('COMMIT', 4, 0.3),
]

EXTENDED = [
    ('SELECT "app_stock"."sku", "app_stock"."qty" FROM "app_stock" WHERE "app_stock"."warehouse_id" = $1 AND "app_stock"."sku" = $2', 2, 0.2),
    ('UPDATE "app_stock" SET "qty" = "app_stock"."qty" - $1 WHERE "app_stock"."sku" = $2', 2, 0.5),
]

MULTILINE = [
    ("SELECT a.name,\n       count(b.id) AS n_books,\n       sum(b.price) AS revenue\n  FROM app_author a\n  JOIN app_book b ON b.author_id = a.id\n WHERE a.country = '{w}'\n GROUP BY a.name\n ORDER BY revenue DESC\n LIMIT 10", 1, 850.0),
    ("SELECT date_trunc('month', o.created_at) AS month,\n       sum(o.total) AS revenue\n  FROM app_order o\n WHERE o.created_at >= '2024-0{d1}-01'\n GROUP BY 1\n ORDER BY 1", 1, 2300.0),
]

WORDS = ["new", "paid", "shipped", "cancelled", "refunded", "fr", "de", "us", "jp", "br"]


class Clock:
    def __init__(self):
        self.t = dt.datetime(2024, 6, 11, 8, 0, 0, tzinfo=dt.timezone.utc)

    def tick(self, rng):
        self.t += dt.timedelta(microseconds=rng.randint(50, 900))
        return self.t

    def stamp(self):
        return self.t.strftime("%Y-%m-%d %H:%M:%S.") + f"{self.t.microsecond // 1000:03d} UTC"


def fill(tpl, rng):
    out = tpl
    while "{i}" in out:
        out = out.replace("{i}", str(rng.randint(1, 500000)), 1)
    while "{s}" in out:
        out = out.replace("{s}", str(rng.choice((5, 10, 20, 50))), 1)
    while "{w}" in out:
        out = out.replace("{w}", rng.choice(WORDS), 1)
    while "{d1}" in out:
        out = out.replace("{d1}", str(rng.randint(1, 9)), 1)
    while "{d}" in out:
        out = out.replace("{d}", f"{rng.randint(1, 28):02d}", 1)
    while "{h}" in out:
        out = out.replace("{h}", "%032x" % rng.getrandbits(128), 1)
    if "{list}" in out:
        out = out.replace("{list}", ", ".join(str(rng.randint(1, 9999)) for _ in range(rng.randint(1, 40))))
    return out.replace("{{", "{").replace("}}", "}")


def duration(rng, median):
    return max(0.002, rng.lognormvariate(0, 0.9) * median)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    clock = Clock()
    target = int(args.mb * 1024 * 1024)
    pids = list(range(20000, 20060))
    shapes = [s for s in SHAPES for _ in range(s[1])]
    written = 0
    next_pid = 30000
    with open(args.out, "w", buffering=1 << 20) as f:
        def emit(pid, text):
            nonlocal written
            line = f"{clock.stamp()} [{pid}] {text}\n"
            f.write(line)
            written += len(line)

        def statement(pid, sql, ms):
            body = sql.replace("\n", "\n\t")
            emit(pid, f"LOG:  duration: {ms:.3f} ms  statement: {body}")

        while written < target:
            clock.tick(rng)
            pid = rng.choice(pids)
            r = rng.random()
            if r < 0.80:
                tpl, _, median = rng.choice(shapes)
                statement(pid, fill(tpl, rng), duration(rng, median))
            elif r < 0.93:
                tpl, _, median = rng.choice(EXTENDED)
                params = f"$1 = '{rng.randint(1, 9)}', $2 = 'SKU-{rng.randint(1, 99999):05d}'"
                emit(pid, f"LOG:  duration: {duration(rng, 0.05):.3f} ms  parse <unnamed>: {tpl}")
                emit(pid, f"LOG:  duration: {duration(rng, 0.04):.3f} ms  bind <unnamed>: {tpl}")
                emit(pid, f"DETAIL:  parameters: {params}")
                emit(pid, f"LOG:  duration: {duration(rng, median):.3f} ms  execute <unnamed>: {tpl}")
                emit(pid, f"DETAIL:  parameters: {params}")
            elif r < 0.985:
                # an N+1 loop: a list query, then one lookup per row
                n = rng.randint(20, 150)
                statement(pid, f'SELECT "app_book"."id", "app_book"."author_id" FROM "app_book" ORDER BY "app_book"."id" LIMIT {n}', duration(rng, 0.5))
                for _ in range(n):
                    clock.t += dt.timedelta(microseconds=rng.randint(400, 1500))
                    statement(pid, fill(SHAPES[0][0], rng), duration(rng, 0.06))
            elif r < 0.992:
                tpl, _, median = rng.choice(MULTILINE)
                statement(pid, fill(tpl, rng), duration(rng, median))
            elif r < 0.996:
                holder, waiter = rng.sample(pids, 2)
                xid = rng.randint(100000, 999999)
                waited = 1000 + rng.random() * 3000
                upd = f"UPDATE app_order SET status = '{rng.choice(WORDS)}' WHERE id = {rng.randint(1, 50000)}"
                emit(waiter, f"LOG:  process {waiter} still waiting for ShareLock on transaction {xid} after 1000.{rng.randint(100, 999)} ms")
                emit(waiter, f"DETAIL:  Process holding the lock: {holder}. Wait queue: {waiter}.")
                emit(waiter, f"CONTEXT:  while updating tuple (0,{rng.randint(1, 90)}) in relation \"app_order\"")
                emit(waiter, f"STATEMENT:  {upd}")
                clock.t += dt.timedelta(milliseconds=waited - 1000)
                emit(waiter, f"LOG:  process {waiter} acquired ShareLock on transaction {xid} after {waited:.3f} ms")
                emit(waiter, f"CONTEXT:  while updating tuple (0,{rng.randint(1, 90)}) in relation \"app_order\"")
                emit(waiter, f"STATEMENT:  {upd}")
                statement(waiter, upd, waited + 0.4)
            elif r < 0.9975:
                a, b = rng.sample(pids, 2)
                xa, xb = rng.randint(100000, 999999), rng.randint(100000, 999999)
                ua = f"UPDATE app_stock SET qty = qty - 1 WHERE sku = 'SKU-{rng.randint(1, 99999):05d}'"
                ub = f"UPDATE app_stock SET qty = qty + 1 WHERE sku = 'SKU-{rng.randint(1, 99999):05d}'"
                emit(a, f"LOG:  process {a} detected deadlock while waiting for ShareLock on transaction {xb} after 1000.{rng.randint(100, 999)} ms")
                emit(a, f"DETAIL:  Process holding the lock: {b}. Wait queue: .")
                emit(a, f"STATEMENT:  {ua}")
                emit(a, "ERROR:  deadlock detected")
                emit(a, f"DETAIL:  Process {a} waits for ShareLock on transaction {xb}; blocked by process {b}.\n\tProcess {b} waits for ShareLock on transaction {xa}; blocked by process {a}.\n\tProcess {a}: {ua}\n\tProcess {b}: {ub}")
                emit(a, "HINT:  See server log for query details.")
                emit(a, f"STATEMENT:  {ua}")
            elif r < 0.9985:
                emit(pid, "ERROR:  canceling statement due to statement timeout")
                emit(pid, "STATEMENT:  SELECT count(*) FROM app_event WHERE payload::text LIKE '%" + rng.choice(WORDS) + "%'")
            elif r < 0.9993:
                emit(pid, f"LOG:  temporary file: path \"base/pgsql_tmp/pgsql_tmp{pid}.{rng.randint(0, 9)}\", size {rng.randint(1, 400) * 8192}")
                emit(pid, "STATEMENT:  SELECT * FROM app_book ORDER BY title, price OFFSET 10000")
            elif r < 0.9998:
                emit(pid, "ERROR:  duplicate key value violates unique constraint \"app_author_email_key\"")
                emit(pid, f"DETAIL:  Key (email)=(author{rng.randint(1, 999)}@example.com) already exists.")
                emit(pid, "STATEMENT:  INSERT INTO app_author (name, email) VALUES ('x', 'y')")
            else:
                emit(23, "LOG:  checkpoint starting: time")
                # new connections replace old ones now and then
                i = rng.randrange(len(pids))
                pids[i] = next_pid
                next_pid += 1


if __name__ == "__main__":
    main()
