"""The reports computed in plain Python from a generator's ground truth: the oracle the
ClickHouse answers are compared with. Same window rules as pipeline/store/reports.py."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)
PRESETS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
LEGACY = {"TLS1.0", "TLS1.1", "SSL3"}
ORDER = ["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3", "none", "unknown"]


def ts(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))


def window(now: datetime, preset: str = "7d") -> tuple[datetime, datetime]:
    until = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    return until - PRESETS[preset], until


def submissions(truth, since, until, domain=None):
    return [e for e in truth if e["kind"] == "submission" and since <= ts(e) < until
            and (domain is None or (e["sender_domain"] or "") == domain)]


def widget(truth, now):
    since, until = window(now)
    cur = {e["sender"] for e in submissions(truth, since, until) if e["sender"]}
    prev = {e["sender"] for e in submissions(truth, since - timedelta(days=7), since)
            if e["sender"]}
    return len(cur), len(prev)


def shares(events):
    counts = Counter(e["tls_version"] for e in events)
    total = sum(counts.values()) or 1
    return [{"tls_version": v, "messages": counts[v], "share": round(counts[v] / total, 6)}
            for v in sorted(counts, key=ORDER.index)]


def days(since, until):
    d, out = since.date(), []
    while d <= (until - HOUR).date():
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def flyout(truth, now):
    since, until = window(now)
    subs = submissions(truth, since, until)
    per_day = Counter(ts(e).date().isoformat() for e in subs)
    return {"tls": shares(subs), "daily": [{"day": d, "messages": per_day[d]}
                                           for d in days(since, until)]}


def protocol(mechs):
    return "+".join(sorted({"OAuth" if m in ("XOAUTH2", "OAUTHBEARER") else "Basic"
                            for m in mechs}))


def volume(truth, now, preset="7d", domain=None):
    since, until = window(now, preset)
    subs = submissions(truth, since, until, domain)
    chart = Counter((ts(e).date().isoformat(), e["sender_domain"] or "") for e in subs)
    by_sender = defaultdict(list)
    for e in subs:
        if e["sender"]:
            by_sender[e["sender"]].append(e)
    rows = []
    for sender, evs in by_sender.items():
        n = len(evs)
        tls = Counter(e["tls_version"] for e in evs)
        rows.append({"sender": sender, "domain": evs[0]["sender_domain"] or "", "messages": n,
                     "tls10": round(tls["TLS1.0"] / n, 6), "tls11": round(tls["TLS1.1"] / n, 6),
                     "tls12": round(tls["TLS1.2"] / n, 6), "tls13": round(tls["TLS1.3"] / n, 6),
                     "protocol": protocol(e["auth_mechanism"] or "" for e in evs)})
    rows.sort(key=lambda r: (-r["messages"], r["sender"]))
    return {"chart": [{"day": d, "domain": dom, "messages": n}
                      for (d, dom), n in sorted(chart.items())], "rows": rows}


def tls_usage(truth, now, preset="7d", domain=None):
    since, until = window(now, preset)
    subs = submissions(truth, since, until, domain)
    chart = Counter((ts(e).date().isoformat(), e["tls_version"]) for e in subs)
    per = Counter((e["sender"], e["sender_domain"] or "", e["tls_version"]) for e in subs
                  if e["sender"])
    rows = [{"sender": s, "domain": d, "tls_version": v, "messages": n}
            for (s, d, v), n in per.items()]
    rows.sort(key=lambda r: (-r["messages"], r["sender"], r["tls_version"]))
    return {"totals": shares(subs), "rows": rows,
            "chart": [{"day": d, "tls_version": v, "messages": n}
                      for (d, v), n in sorted(chart.items())]}


def remediation(truth, now, preset="7d"):
    since, until = window(now, preset)
    by_sender = defaultdict(list)
    for e in submissions(truth, since, until):
        if e["sender"] and e["tls_version"] in LEGACY:
            by_sender[e["sender"]].append(e)
    rows = [{"sender": s, "domain": evs[0]["sender_domain"] or "", "messages": len(evs),
             "tls_versions": sorted({e["tls_version"] for e in evs}),
             "client_ips": sorted({e["client_ip"] for e in evs if e["client_ip"]}),
             "last_seen": max(ts(e) for e in evs)} for s, evs in by_sender.items()]
    rows.sort(key=lambda r: (-r["messages"], r["sender"]))
    return rows


def failures(truth, now, preset="7d", limit=50):
    since, until = window(now, preset)
    fails = [e for e in truth if e["kind"] == "auth_failure" and since <= ts(e) < until]

    def group(key, other):
        out = defaultdict(list)
        for e in fails:
            out[e[key] or "(unknown)"].append(e)
        rows = [{"key": k, "failures": len(evs), "distinct": len({e[other] for e in evs
                                                                   if e[other]}),
                 "last_seen": max(ts(e) for e in evs)} for k, evs in out.items()]
        return sorted(rows, key=lambda r: (-r["failures"], r["key"]))[:limit]

    return {"by_account": group("sender", "client_ip"), "by_ip": group("client_ip", "sender")}


def export(truth, now, preset="7d"):
    since, until = window(now, preset)
    groups = defaultdict(list)
    for e in submissions(truth, since, until):
        key = (ts(e).date().isoformat(), e["sender"] or "", e["sender_domain"] or "",
               e["auth_mechanism"] or "", e["client_ip"] or "", e["tls_version"],
               e["tls_cipher"] or "")
        groups[key].append(e)
    rows = []
    for (day, s, d, m, ip, tls, c), evs in groups.items():
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        rows.append([day, s, d, m, "" if not m else protocol([m]), ip, tls, c,
                     str(len(evs)), str(sum(e["recipients"] or 0 for e in evs)),
                     str(sum(e["size"] or 0 for e in evs)),
                     min(ts(e) for e in evs).strftime(fmt), max(ts(e) for e in evs).strftime(fmt)])
    rows.sort(key=lambda r: (r[0], r[1], r[3], r[5], r[6], r[7]))
    return rows
