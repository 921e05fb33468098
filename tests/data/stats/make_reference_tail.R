# Reference values for the tail test (server/stats/tail.hpp, tests/unit/stats/tail_test.cpp),
# computed independently in R: each run's log(ms) centred on its job's median (both arms pooled),
# the pooled median and mad() of the centred values, a run slow when it lies more than 3.5 mads
# above that median, then the exact conditional test of the slow counts stratified by job —
# mantelhaen.test(exact = TRUE) over the jobs with runs of both arms (fisher.test for one job) —
# one-sided both ways, and the change of the 90th percentiles (quantile(type = 7)) of the centred
# values. Companion of make_reference.R (same CSV format).
#
#   Rscript tests/data/stats/make_reference_tail.R   # from the repository root
#
# Writes tail_reference.csv beside this script. Deterministic (set.seed).

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script) == 1) dirname(normalizePath(script)) else "tests/data/stats"

set.seed(20261203)

source(file.path(out_dir, "reference_common.R"))  # num1, num, field, write_reference

# Runs of `jobs` jobs of n per arm: job levels, per-run noise, bursts in both arms, and in the
# candidate a share `tail` of runs `tail_factor` times slower.
make_case <- function(name, jobs, n, tail = 0, tail_factor = 1, burst = 0.03, baseline_tail = 0) {
  b <- c(); bj <- c(); cnd <- c(); cj <- c()
  for (j in seq_len(jobs)) {
    level <- rnorm(1, 0, 0.015)
    xb <- 200 * exp(level + rnorm(n, 0, 0.03))
    xc <- 200 * exp(level + rnorm(n, 0, 0.03))
    xb <- xb * ifelse(runif(n) < burst, 1.2 + 0.8 * runif(n), 1)
    xc <- xc * ifelse(runif(n) < burst, 1.2 + 0.8 * runif(n), 1)
    xc <- xc * ifelse(runif(n) < tail, tail_factor, 1)
    xb <- xb * ifelse(runif(n) < baseline_tail, tail_factor, 1)
    b <- c(b, xb); bj <- c(bj, rep(j, n)); cnd <- c(cnd, xc); cj <- c(cj, rep(j, n))
  }
  list(name = name, b = b, bj = bj, c = cnd, cj = cj)
}

reference <- function(cs) {
  lb <- log(cs$b); lc <- log(cs$c)
  jobs <- sort(unique(c(cs$bj, cs$cj)))
  centre <- sapply(jobs, function(j) median(c(lb[cs$bj == j], lc[cs$cj == j])))
  names(centre) <- jobs
  cb <- lb - centre[as.character(cs$bj)]
  cc <- lc - centre[as.character(cs$cj)]
  pooled <- c(cb, cc)
  m <- median(pooled); s <- mad(pooled)
  slow_b <- (cb - m) > 3.5 * s
  slow_c <- (cc - m) > 3.5 * s
  both <- jobs[sapply(jobs, function(j) any(cs$bj == j) && any(cs$cj == j))]
  tab <- array(0, dim = c(2, 2, length(both)))
  for (k in seq_along(both)) {
    j <- both[k]
    tab[1, 1, k] <- sum(slow_c[cs$cj == j]); tab[1, 2, k] <- sum(!slow_c[cs$cj == j])
    tab[2, 1, k] <- sum(slow_b[cs$bj == j]); tab[2, 2, k] <- sum(!slow_b[cs$bj == j])
  }
  if (length(both) == 1) {
    g <- fisher.test(tab[, , 1], alternative = "greater")$p.value
    l <- fisher.test(tab[, , 1], alternative = "less")$p.value
  } else {
    g <- mantelhaen.test(tab, alternative = "greater", exact = TRUE)$p.value
    l <- mantelhaen.test(tab, alternative = "less", exact = TRUE)$p.value
  }
  data.frame(case = cs$name, baseline = field(cs$b), baseline_jobs = field(cs$bj), candidate = field(cs$c),
             candidate_jobs = field(cs$cj), slow_baseline = sum(slow_b), slow_candidate = sum(slow_c),
             jobs = length(both), p_greater = num(g), p_less = num(l),
             p90_change_pct = num(100 * expm1(quantile(cc, 0.9, type = 7) - quantile(cb, 0.9, type = 7))),
             stringsAsFactors = FALSE)
}

cases <- list(
  make_case("one_job_no_change", 1, 20),
  make_case("six_jobs_no_change", 6, 10),
  make_case("six_jobs_15pct_of_runs_50pct_slower", 6, 10, tail = 0.15, tail_factor = 1.5),
  make_case("three_jobs_30pct_of_runs_twice_as_slow", 3, 10, tail = 0.3, tail_factor = 2),
  make_case("four_jobs_slow_tail_in_the_baseline", 4, 10, baseline_tail = 0.2, tail_factor = 1.6)
)
# A job with baseline runs only (its candidate runs were set aside): not a stratum.
extra <- make_case("a_job_with_one_arm_is_left_out", 3, 10, tail = 0.2, tail_factor = 1.5)
keep <- extra$cj != 3
extra$c <- extra$c[keep]; extra$cj <- extra$cj[keep]
cases[[length(cases) + 1]] <- extra

rows <- do.call(rbind, lapply(cases, reference))
write_reference(rows, out_dir, "tail_reference.csv", "make_reference_tail.R")
