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
# cellx(kind, step, srv): the cell of one server in a summary row
function cellx(kind, step, srv,    x) {
	if (kind == "rps") return cell(step, srv, "rps", 1, 0)
	if (kind == "mbs") return cell(step, srv, "rps", 0.1024, 0)
	if (kind == "lat") return cell(step, srv, "p50_ms", 1, 2) " / " cell(step, srv, "p99_ms", 1, 1)
	if (kind == "runs") return validity(step, srv)
	if (kind == "big") { x = med(step, srv, "seconds", 1); return cell(step, srv, "seconds", 1, 2) (x != "" ? " = " fmt(1073.741824 / x, 0) : "") }
	if (kind == "rss") return cell(step, srv, "rss_max_kib", 1 / 1024, 1) " [" cell(step, srv, "rss_tree_kib", 1 / 1024, 0) "]"
	if (kind == "anon") return cell(step, srv, "rss_anon_max_kib", 1 / 1024, 1)
	if (kind == "ms") return cell(step, srv, "ms", 1, 1)
	if (kind == "bytes") return cell(step, srv, "bytes", 1, 0)
}
# rt(kind, step, ref): attachd against the reference server ref (nginx or apache)
function rt(kind, step, ref,    rn) {
	rn = (ref == N) ? "nginx" : "Apache"
	if (kind == "rps") return ratio(med(step, A, "rps", 1), med(step, ref, "rps", 1), 2) " (higher is better)"
	if (kind == "big") return ratio(med(step, ref, "seconds", 1), med(step, A, "seconds", 1), 2) " throughput (higher is better)"
	if (kind == "rss") return ratio(med(step, A, "rss_max_kib", 1), med(step, ref, "rss_max_kib", 1), 2) " (lower is better)"
	if (kind == "anon") return ratio(med(step, A, "rss_anon_max_kib", 1), med(step, ref, "rss_anon_max_kib", 1), 2) " (lower is better)"
	if (kind == "ms") return ratio(med(step, ref, "ms", 1), med(step, A, "ms", 1), 3) " " rn "/attachd (higher is better); attachd/" rn " = " ratio(med(step, A, "ms", 1), med(step, ref, "ms", 1), 2)
	if (kind == "bytes") return ratio(med(step, A, "bytes", 1), med(step, ref, "bytes", 1), 2)
	return ""
}
# row(label, metric, kind, step, anchor_nginx, anchor_apache)
function row(label, metric, kind, step, an, ap,    i) {
	printf "| %s | %s |", label, metric
	for (i = 1; i <= ns; i++) printf " %s |", cellx(kind, step, servers[i])
	if (hasA && hasN) printf " %s |", rt(kind, step, N)
	if (hasA && hasP) printf " %s |", rt(kind, step, P)
	if (hasN) printf " %s |", an
	if (hasP) printf " %s |", ap
	printf "\n"
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
	hasN = index(" " meta["servers"] " ", " nginx ") > 0
	hasP = index(" " meta["servers"] " ", " apache ") > 0
	hasA = index(" " meta["servers"] " ", " attachd ") > 0
	tm = meta["tmpfs"] == "1"
	N = "nginx"; P = "apache"; A = "attachd"

	printf "# attachd vs nginx dav%s: %s%s\n\n", hasP ? " and Apache mod_dav" : "", meta["date"], tm ? ", data on tmpfs" : ", data on disk"
	printf "- Run: %d interleaved round(s), steps: %s; server order rotated each round (", rounds, meta["steps"]
	for (r = 1; r <= rounds; r++) printf "%sr%d: %s", (r > 1 ? "; " : ""), r, order[r]
	printf "); `sync` + 2 s pause before every measurement; took %s.\n", meta["elapsed"]
	printf "- Machine: %s; data: %s.\n", meta["machine"], meta["datafs"]
	printf "- Versions: %s; attachd %s.\n", meta["versions"], meta["attachd"]
	if (has_step("davput") || has_step("davget")) printf "- put/get: attachd on its Kazoo route; davput/davget: attachd under `/dav/` (MKCOL first); nginx and Apache serve both from their WebDAV root, so for them put and davput (get and davget) are the same measurement taken twice.\n"
	if (meta["attachd_config"] != "") printf "- attachd ran with `--config %s`.\n", meta["attachd_config"]
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
	if (hasA && hasN) printf " attachd vs nginx |"
	if (hasA && hasP) printf " attachd vs Apache |"
	if (hasN) printf " nginx in anchors (%s) |", tm ? "tmpfs" : "disk"
	if (hasP) printf " Apache in anchors (%s) |", tm ? "tmpfs" : "disk"
	printf "\n|---|---|"
	for (i = 1; i <= ns + (hasA && hasN) + (hasA && hasP) + hasN + hasP; i++) printf "---|"
	printf "\n"

	for (st = 1; st <= 4; st++) {
		step = (st == 1 ? "put" : st == 2 ? "davput" : st == 3 ? "get" : "davget")
		if (!has_step(step)) continue
		lbl = (step == "put" ? "PUT 100 KiB (attachd: Kazoo route)" : step == "davput" ? "PUT 100 KiB through /dav/" : step == "get" ? "GET 100 KiB (attachd: Kazoo route)" : "GET 100 KiB through /dav/")
		if (step ~ /put/) {
			row(lbl, "req/s", "rps", step, tm ? "6 659 (6 394–7 062)" : "2 809 (1 755–3 362)", tm ? "3 710 (3 475–4 019)" : "2 746 (1 311–3 214)")
			row("", "MB/s", "mbs", step, tm ? "682" : "288 (180–344)", tm ? "380" : "281 (134–329)")
			row("", "p50 / p99 ms", "lat", step, tm ? "0.93 / 6.6" : "2.54 (2.13–4.13) / 8.8 (8.7–36.7)", tm ? "1.82 / 9.8" : "2.53 (2.17–5.65) / 11.3 (9.3–18.1)")
			row("", "runs", "runs", step, "0 errors", "0 errors")
		} else {
			row(lbl, "req/s", "rps", step, tm ? "–" : "19 779 (15 828–20 842)", tm ? "–" : "12 042 (11 100–13 726)")
			row("", "p50 / p99 ms", "lat", step, tm ? "–" : "– / 1.8 (1.6–21.0)", tm ? "–" : "– / 3.0 (2.5–4.1)")
			row("", "runs", "runs", step, tm ? "–" : "0 errors", tm ? "–" : "0 errors")
		}
	}
	if (has_step("big")) {
		row("big 1 GiB PUT", "s (MB/s)", "big", "big", tm ? "1.08 (1.04–1.12) = 994" : "1.24 (1.09–1.37) = 866", tm ? "1.63 (1.60–1.72) = 659" : "2.24 (2.04–2.60) = 479")
		row("", "peak RSS MiB, largest process [all processes]", "rss", "big", tm ? "12.2 [27]" : "12.3 [34]", tm ? "12.0 [26]" : "12.8 [29]")
		row("", "peak anonymous RSS MiB, largest process (sampled every 50 ms)", "anon", "big", "–", "–")
		row("", "runs (size checked with HEAD)", "runs", "big", "size checked", "size checked")
	}
	if (has_step("propfind")) {
		row("PROPFIND Depth 1, 10 000 x 1 KiB", "ms", "ms", "propfind", tm ? "37.6 (31.7–39.2)" : "33.3 (32.4–44.6)", tm ? "243.1 (240.8–248.1)" : "222.5 (215.1–276.6)")
		row("", "response bytes", "bytes", "propfind", tm ? "–" : "5 120 559", tm ? "–" : "8 260 847")
		row("", "runs (10 001 hrefs checked)", "runs", "propfind", "10 001 hrefs", "10 001 hrefs")
	}

	printf "\n## Every run\n\n| round | step | server | result | statuses / check | other CPU %%: pause before / during |\n|---|---|---|---|---|---|\n"
	for (r = 1; r <= rounds; r++) {
		no = split(order[r], ord, " ")
		for (st = 1; st <= 6; st++) {
			step = (st == 1 ? "put" : st == 2 ? "get" : st == 3 ? "davput" : st == 4 ? "davget" : st == 5 ? "big" : "propfind")
			if (!has_step(step)) continue
			for (i = 1; i <= no; i++) {
				s = ord[i]; k = r SUBSEP step SUBSEP s
				if (!((k, "valid") in v)) continue
				if (step ~ /put|get/)
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
