# Reference values for the suite summary (server/stats/suite.hpp, tests/unit/stats/suite_test.cpp),
# computed independently in R: each changed verdict's p put on the suite's scale, min(1, p * alpha
# / level), 1 for every other verdict; Holm's adjustment with p.adjust(method = "holm"); the
# geometric mean of the effects, exp(mean(log1p(effect / 100))) - 1, and its interval from
# qnorm(1 - alpha / 2) * sqrt(sum(se^2)) / K. Companion of make_reference.R (same CSV format).
# Verdict codes: 0 no_change, 1 regression, 2 improvement, 3 inconclusive.
#
#   Rscript tests/data/stats/make_reference_suite.R   # from the repository root
#
# Writes suite_reference.csv beside this script. Deterministic (set.seed).

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script) == 1) dirname(normalizePath(script)) else "tests/data/stats"

set.seed(20261204)

source(file.path(out_dir, "reference_common.R"))  # num1, num, field, write_reference

make_case <- function(name, k, alpha, shift) {
  effect <- 100 * expm1(rnorm(k, log1p(shift / 100), 0.03))
  se <- runif(k, 0.004, 0.03)
  p <- 10^runif(k, -7, 0)
  level <- sample(c(0.0024, 0.01, 0.05, 0.1), k, replace = TRUE)
  verdict <- sample(0:3, k, replace = TRUE)
  changed <- verdict %in% c(1, 2)
  scaled <- ifelse(changed, pmin(1, p * alpha / level), 1)
  holm <- p.adjust(scaled, method = "holm")
  d <- log1p(effect / 100)
  z <- qnorm(1 - alpha / 2)
  half <- z * sqrt(sum(se^2)) / k
  data.frame(name = name, alpha = num(alpha), verdict = field(verdict), effect_pct = field(effect),
             se_log = field(se), p_value = field(p), level = field(level), holm_p = field(holm),
             geomean_pct = num(100 * expm1(mean(d))), ci_low_pct = num(100 * expm1(mean(d) - half)),
             ci_high_pct = num(100 * expm1(mean(d) + half)), stringsAsFactors = FALSE)
}

cases <- list()
for (i in 1:12) {
  k <- sample(2:9, 1)
  cases[[i]] <- make_case(paste0("suite_", i, "_of_", k), k, sample(c(0.01, 0.05, 0.1), 1), sample(c(-5, 0, 3), 1))
}
rows <- do.call(rbind, cases)
write_reference(rows, out_dir, "suite_reference.csv", "make_reference_suite.R")
