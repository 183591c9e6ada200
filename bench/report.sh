#!/usr/bin/env bash
# bench/report.sh RAWDIR: turn the results.tsv and meta.tsv that bench/run.sh wrote into the
# Markdown table (stdout).  run.sh calls it; run it again by hand to re-render an old run.
set -euo pipefail
raw=${1:?usage: bench/report.sh RAWDIR}
[ -f "$raw/results.tsv" ] && [ -f "$raw/meta.tsv" ] || { echo "report.sh: no results.tsv/meta.tsv in $raw" >&2; exit 1; }

awk -F'\t' '
function fmt(x, dec,    s, ip, fp, neg, out) {
	s = sprintf("%." dec "f", x)
	neg = ""
	if (substr(s, 1, 1) == "-") { neg = "-"; s = substr(s, 2) }
	ip = s; fp = ""
	if (index(s, ".") > 0) { ip = substr(s, 1, index(s, ".") - 1); fp = substr(s, index(s, ".")) }
	out = ""
	while (length(ip) > 3) { out = " " substr(ip, length(ip) - 2) out; ip = substr(ip, 1, length(ip) - 3) }
	return neg ip out fp
}
# collect(step, srv, key, scale): the values of valid rounds into vals[1..nv], sorted;
# sets MED (median), MIN, MAX; returns nv.
function collect(step, srv, key, scale,    r, i, j, t, k) {
	nv = 0
	for (r = 1; r <= rounds; r++) {
		k = r SUBSEP step SUBSEP srv
		if (v[k, "valid"] != "1" || !((k, key) in v) || v[k, key] == "") continue
		vals[++nv] = v[k, key] * scale
	}
	for (i = 2; i <= nv; i++) { t = vals[i]; for (j = i - 1; j >= 1 && vals[j] > t; j--) vals[j + 1] = vals[j]; vals[j + 1] = t }
	if (nv == 0) { MED = ""; return 0 }
	MIN = vals[1]; MAX = vals[nv]
	MED = (nv % 2) ? vals[(nv + 1) / 2] : (vals[nv / 2] + vals[nv / 2 + 1]) / 2
	return nv
}
# cell(step, srv, key, scale, dec): "median (min–max)" over valid rounds, or "–"
function cell(step, srv, key, scale, dec) {
	if (!collect(step, srv, key, scale)) return "–"
	if (nv == 1 || fmt(MIN, dec) == fmt(MAX, dec)) return fmt(MED, dec)
	return fmt(MED, dec) " (" fmt(MIN, dec) "–" fmt(MAX, dec) ")"
}
function med(step, srv, key, scale) { collect(step, srv, key, scale); return MED }
function validity(step, srv,    r, n, bad, k) {
	n = 0; bad = ""
	for (r = 1; r <= rounds; r++) {
		k = r SUBSEP step SUBSEP srv
		if (!((k, "valid") in v)) continue
		n++
		if (v[k, "valid"] != "1") bad = bad (bad == "" ? "" : ", ") "r" r
	}
	if (n == 0) return "not run"
	if (bad == "") return "all " n " valid"
	return "**INVALID: " bad "** of " n
}
function ratio(a, b, dec) { return (a == "" || b == "" || b == 0) ? "–" : fmt(a / b, dec) "×" }
function row(label, metric, a, b, rt, anchor,    i) {
	printf "| %s | %s |", label, metric
	for (i = 1; i <= ns; i++) printf " %s |", (servers[i] == "nginx" ? a : b)
	if (two) printf " %s |", rt
	printf " %s |\n", anchor
}
function val(k, key, dec) { return (((k, key) in v) && v[k, key] != "") ? fmt(v[k, key], dec) : "–" }
function has_step(s) { return index(" " meta["steps"] " ", " " s " ") > 0 }

FNR == NR { meta[$1] = $2; next }
{
	k = $1 SUBSEP $2 SUBSEP $3
	if ($4 == "note") note[++nn] = "r" $1 " " $2 " " $3 ": " $5
	else v[k, $4] = $5
	if ($2 == "round") order[$1] = $5
}
END {
	rounds = meta["rounds"] + 0
	ns = split(meta["servers"], servers, " ")
	two = (index(" " meta["servers"] " ", " nginx ") && index(" " meta["servers"] " ", " attachd "))
	tm = meta["tmpfs"] == "1"
	N = "nginx"; A = "attachd"

	printf "# attachd vs nginx dav: %s%s\n\n", meta["date"], tm ? ", data on tmpfs" : ", data on disk"
	printf "- Run: %d interleaved round(s), steps: %s; server order rotated each round (", rounds, meta["steps"]
	for (r = 1; r <= rounds; r++) printf "%sr%d: %s", (r > 1 ? "; " : ""), r, order[r]
	printf "); `sync` + 2 s pause before every measurement; took %s.\n", meta["elapsed"]
	printf "- Machine: %s; data: %s.\n", meta["machine"], meta["datafs"]
	printf "- Versions: %s; attachd %s.\n", meta["versions"], meta["attachd"]
	if (meta["attachd_delete"] == "0") printf "- attachd had no DELETE under /dav/: big PUTs overwrite one path per round (no `--prepare`), PUT data was not deleted between runs.\n"
	maxbz = -1; maxot = -1
	for (kk in v) {
		split(kk, p, SUBSEP)
		if (p[4] == "idle_busy_pct" && v[kk] + 0 > maxbz) maxbz = v[kk] + 0
		if (p[4] == "other_cpu_pct" && v[kk] + 0 > maxot) maxot = v[kk] + 0
	}
	if (maxbz >= 0) printf "- Other load: at most %d %% of the CPUs were busy in the 2 s pauses before a measurement (when nothing of the benchmark runs), and other processes used at most %d %% during a measurement%s.\n", maxbz, maxot, (maxbz > 15 || maxot > 15 ? " (**runs flagged in bold below shared the machine with something else: compare them with care**)" : "")
	printf "- Cells: median over valid rounds (min–max). A wrk run with any non-2xx status or socket error, a failed hyperfine, a wrong stored size or a wrong href count makes that round INVALID; it is left out of the median and named below.\n"
	printf "- Method, ratios and anchors: bench/README.md. Raw outputs: `%s` (not committed).\n\n", meta["raw"]

	printf "| step | metric |"
	for (i = 1; i <= ns; i++) printf " %s |", servers[i]
	if (two) printf " attachd vs nginx |"
	printf " nginx in anchors (%s) |\n|---|---|", tm ? "tmpfs" : "disk"
	for (i = 1; i <= ns + two + 1; i++) printf "---|"
	printf "\n"

	if (has_step("put")) {
		row("PUT 100 KiB", "req/s", cell("put", N, "rps", 1, 0), cell("put", A, "rps", 1, 0),
			ratio(med("put", A, "rps", 1), med("put", N, "rps", 1), 2) " (higher is better)",
			tm ? "6 659 (6 394–7 062)" : "2 809 (1 755–3 362)")
		row("", "MB/s", cell("put", N, "rps", 0.1024, 0), cell("put", A, "rps", 0.1024, 0), "", tm ? "682" : "288 (180–344)")
		row("", "p50 / p99 ms", cell("put", N, "p50_ms", 1, 2) " / " cell("put", N, "p99_ms", 1, 1),
			cell("put", A, "p50_ms", 1, 2) " / " cell("put", A, "p99_ms", 1, 1), "", tm ? "0.93 / 6.6" : "2.54 (2.13–4.13) / 8.8 (8.7–36.7)")
		row("", "runs", validity("put", N), validity("put", A), "", "0 errors")
	}
	if (has_step("get")) {
		row("GET 100 KiB", "req/s", cell("get", N, "rps", 1, 0), cell("get", A, "rps", 1, 0),
			ratio(med("get", A, "rps", 1), med("get", N, "rps", 1), 2) " (higher is better)",
			tm ? "–" : "19 779 (15 828–20 842)")
		row("", "p50 / p99 ms", cell("get", N, "p50_ms", 1, 2) " / " cell("get", N, "p99_ms", 1, 1),
			cell("get", A, "p50_ms", 1, 2) " / " cell("get", A, "p99_ms", 1, 1), "", tm ? "–" : "– / 1.8 (1.6–21.0)")
		row("", "runs", validity("get", N), validity("get", A), "", tm ? "–" : "0 errors")
	}
	if (has_step("big")) {
		bn = med("big", N, "seconds", 1); ba = med("big", A, "seconds", 1)
		row("big 1 GiB PUT", "s (MB/s)",
			cell("big", N, "seconds", 1, 2) (bn != "" ? " = " fmt(1073.741824 / bn, 0) : ""),
			cell("big", A, "seconds", 1, 2) (ba != "" ? " = " fmt(1073.741824 / ba, 0) : ""),
			ratio(bn, ba, 2) " throughput (higher is better)", tm ? "1.08 (1.04–1.12) = 994" : "1.24 (1.09–1.37) = 866")
		row("", "peak RSS MiB, largest process [all processes]",
			cell("big", N, "rss_max_kib", 1 / 1024, 1) " [" cell("big", N, "rss_tree_kib", 1 / 1024, 0) "]",
			cell("big", A, "rss_max_kib", 1 / 1024, 1) " [" cell("big", A, "rss_tree_kib", 1 / 1024, 0) "]",
			ratio(med("big", A, "rss_max_kib", 1), med("big", N, "rss_max_kib", 1), 2) " (lower is better)",
			tm ? "12.2 [27]" : "12.3 [34]")
		row("", "runs (size checked with HEAD)", validity("big", N), validity("big", A), "", "size checked")
	}
	if (has_step("propfind")) {
		pn = med("propfind", N, "ms", 1); pa = med("propfind", A, "ms", 1)
		row("PROPFIND Depth 1, 10 000 x 1 KiB", "ms", cell("propfind", N, "ms", 1, 1), cell("propfind", A, "ms", 1, 1),
			ratio(pn, pa, 3) " nginx/attachd (higher is better); attachd/nginx = " ratio(pa, pn, 1),
			tm ? "37.6 (31.7–39.2)" : "33.3 (32.4–44.6)")
		row("", "response bytes", cell("propfind", N, "bytes", 1, 0), cell("propfind", A, "bytes", 1, 0),
			ratio(med("propfind", A, "bytes", 1), med("propfind", N, "bytes", 1), 2), tm ? "–" : "5 120 559")
		row("", "runs (10 001 hrefs checked)", validity("propfind", N), validity("propfind", A), "", "10 001 hrefs")
	}

	printf "\n## Every run\n\n| round | step | server | result | statuses / check | other CPU %%: pause before / during |\n|---|---|---|---|---|---|\n"
	for (r = 1; r <= rounds; r++) {
		no = split(order[r], ord, " ")
		for (st = 1; st <= 4; st++) {
			step = (st == 1 ? "put" : st == 2 ? "get" : st == 3 ? "big" : "propfind")
			if (!has_step(step)) continue
			for (i = 1; i <= no; i++) {
				s = ord[i]; k = r SUBSEP step SUBSEP s
				if (!((k, "valid") in v)) continue
				if (step == "put" || step == "get")
					res = val(k, "rps", 0) " req/s, p50 " val(k, "p50_ms", 2) " / p99 " val(k, "p99_ms", 1) " ms, " val(k, "requests", 0) " requests"
				else if (step == "big")
					res = val(k, "seconds", 3) " s (runs " val(k, "run_min", 3) "–" val(k, "run_max", 3) "), RSS " fmt(v[k, "rss_max_kib"] / 1024, 1) " MiB [" fmt(v[k, "rss_tree_kib"] / 1024, 0) ", " v[k, "nprocs"] " procs]"
				else
					res = val(k, "ms", 1) " ms, " val(k, "bytes", 0) " B"
				chk = (step == "big") ? "stored " v[k, "stored_size"] " B" : (step == "propfind") ? v[k, "hrefs"] " hrefs" : v[k, "statuses"]
				bz = (((k, "idle_busy_pct") in v) ? v[k, "idle_busy_pct"] : "–") " / " (((k, "other_cpu_pct") in v) ? v[k, "other_cpu_pct"] : "–")
				if (v[k, "idle_busy_pct"] + 0 > 15 || v[k, "other_cpu_pct"] + 0 > 15) bz = "**" bz "**"
				if ((k, "waited_s") in v) bz = bz " (waited " v[k, "waited_s"] " s)"
				printf "| %d | %s | %s | %s | %s%s | %s |\n", r, step, s, res, chk, (v[k, "valid"] == "1" ? "" : " **INVALID**"), bz
			}
		}
	}
	if (nn > 0) {
		printf "\n## Notes\n\n"
		for (i = 1; i <= nn; i++) printf "- %s\n", note[i]
	}
}
' "$raw/meta.tsv" "$raw/results.tsv"
