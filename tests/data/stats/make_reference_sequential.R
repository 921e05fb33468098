# Reference values for the group-sequential boundaries (server/stats/sequential.hpp,
# tests/unit/stats/sequential_test.cpp), computed independently by R with base R only.
# Companion of make_reference.R (same CSV format, same helpers).
#
#   Rscript tests/data/stats/make_reference_sequential.R   # from the repository root; ~1 minute
#
# Writes sequential_reference.csv beside this script: one row per design (spending function,
# two-sided alpha, information fractions t), with three independent computations:
#   bounds_integrate         K <= 3 only (else NA): the bounds by R's adaptive quadrature,
#                            integrate() nested once per earlier look, and uniroot() per look.
#   bounds_grid              every design: the same recursion (Armitage, McPherson & Rowe 1969)
#                            on a fine uniform composite-Simpson grid (step kGridStep, truncated at
#                            +/- 15, where the N(0, 1) density is ~ 1e-49: early obrien_fleming
#                            looks spend 1e-20 and less, and at 8.5 their bounds would move by
#                            1e-4), written here from the formulas, not from the C++ code.
#   cumulative_crossing_mc   a seeded Monte Carlo of kPaths Brownian paths observed at t: the
#                            fraction of paths with |Z_i| >= bounds_grid[i] for some i <= j, per
#                            look j, and its binomial standard error mc_se. The same paths serve
#                            every design with the same t (common random numbers).
#   spent                    the spending function at each t_j (the target of every method).
# Spending functions (Lan & DeMets 1983), alpha two-sided, split equally between the two sides:
#   pocock          alpha log(1 + (e - 1) t)
#   obrien_fleming  2 (2 - 2 pnorm(qnorm(1 - alpha/4) / sqrt(t))), i.e. Lan-DeMets'
#                   2 - 2 Phi(z_{1-a/2} / sqrt(t)) spent by each side at a = alpha / 2. This is
#                   the convention of the published tables (K = 5 at 0.05: 4.877, 3.357, 2.680,
#                   2.290, 2.031); the other reading, a = alpha in total, gives 4.383 ... 2.064.
# The outputs are committed; rerun only when cases change. Deterministic (set.seed).

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script) == 1) dirname(normalizePath(script)) else "tests/data/stats"

set.seed(20261201)
kPaths <- 1e7        # Monte Carlo paths per t design (in batches of kBatch)
kBatch <- 1e6
kGridStep <- 0.004   # Simpson step of the grid method (the C++ code uses 0.06 or finer)
kTruncate <- 15

source(file.path(out_dir, "reference_common.R"))  # num1, num, field, write_reference
sample_field <- function(x) paste(num(x), collapse = " ")
rt <- function(x) as.numeric(sprintf("%.17g", x))

spent <- function(spending, alpha, t) {
  if (spending == "pocock") {
    s <- alpha * log(1 + (exp(1) - 1) * t)
  } else {
    s <- 4 * pnorm(qnorm(alpha / 4, lower.tail = FALSE) / sqrt(t), lower.tail = FALSE)
  }
  ifelse(t == 1, alpha, s)
}

# P(|Z_j| >= c | Z_{j-1} = z): Z_j sqrt(t) = z sqrt(tp) + N(0, t - tp).
cross_given <- function(z, c, tp, t) {
  s <- sqrt(t - tp)
  pnorm((-c * sqrt(t) - z * sqrt(tp)) / s) +
    pnorm((c * sqrt(t) - z * sqrt(tp)) / s, lower.tail = FALSE)
}
# Density of Z_j = y given Z_{j-1} = z.
kernel <- function(y, z, tp, t) {
  s <- sqrt(t - tp)
  sqrt(t) / s * dnorm((y * sqrt(t) - z * sqrt(tp)) / s)
}

solve_c <- function(f, target) {
  uniroot(function(c) f(c) - target, c(0.1, 40), tol = 1e-13, maxiter = 200)$root
}

# ---- method 1: integrate(), K <= 3 ---------------------------------------------------------
bounds_integrate <- function(spending, alpha, t) {
  K <- length(t)
  if (K > 3) return(rep(NA_real_, K))
  a <- spent(spending, alpha, t)
  inc <- diff(c(0, a))
  c1 <- qnorm(a[1] / 2, lower.tail = FALSE)
  out <- c1
  q <- function(f, lo, hi) integrate(f, lo, hi, rel.tol = 1e-11, abs.tol = 0,
                                     subdivisions = 1000L)$value
  if (K >= 2) {
    cross2 <- function(c) q(function(z1) dnorm(z1) * cross_given(z1, c, t[1], t[2]), -c1, c1)
    out[2] <- solve_c(cross2, inc[2])
  }
  if (K >= 3) {
    c2 <- out[2]
    cross3 <- function(c) {
      inner <- function(z1) vapply(z1, function(x) {
        q(function(z2) kernel(z2, x, t[1], t[2]) * cross_given(z2, c, t[2], t[3]), -c2, c2)
      }, numeric(1))
      q(function(z1) dnorm(z1) * inner(z1), -c1, c1)
    }
    out[3] <- solve_c(cross3, inc[3])
  }
  out
}

# ---- method 2: uniform composite Simpson grid ------------------------------------------------
simpson <- function(c) {
  L <- min(c, kTruncate)
  m <- ceiling(L / kGridStep)            # 2m intervals (an even number, as Simpson needs)
  z <- seq(-L, L, length.out = 2 * m + 1)
  d <- z[2] - z[1]
  w <- rep(c(2, 4), length.out = 2 * m + 1)
  w[1] <- 1
  w[2 * m + 1] <- 1
  list(z = z, w = w * d / 3)
}
bounds_grid <- function(spending, alpha, t) {
  K <- length(t)
  a <- spent(spending, alpha, t)
  inc <- diff(c(0, a))
  out <- qnorm(a[1] / 2, lower.tail = FALSE)
  g <- simpson(out[1])
  wf <- g$w * dnorm(g$z)                 # Simpson weight x sub-density of Z_1 on (-c1, c1)
  z <- g$z
  if (K >= 2) for (j in 2:K) {
    cross <- function(c) sum(wf * cross_given(z, c, t[j - 1], t[j]))
    out[j] <- solve_c(cross, inc[j])
    if (j < K) {
      g <- simpson(out[j])
      f <- numeric(length(g$z))
      for (idx in split(seq_along(g$z), ceiling(seq_along(g$z) / 400))) {
        f[idx] <- kernel(outer(g$z[idx], rep(1, length(z))), outer(rep(1, length(idx)), z),
                         t[j - 1], t[j]) %*% wf
      }
      wf <- g$w * f
      z <- g$z
    }
  }
  out
}

# ---- method 3: Monte Carlo of Brownian paths -------------------------------------------------
# bounds: a list of bound vectors for the same t; returns a matrix (design x look) of crossing
# counts out of kPaths.
monte_carlo <- function(t, bounds) {
  counts <- matrix(0, length(bounds), length(t))
  for (b in seq_len(kPaths / kBatch)) {
    s <- numeric(kBatch)
    crossed <- lapply(bounds, function(x) logical(kBatch))
    tp <- 0
    for (j in seq_along(t)) {
      s <- s + rnorm(kBatch, sd = sqrt(t[j] - tp))
      az <- abs(s) / sqrt(t[j])
      tp <- t[j]
      for (d in seq_along(bounds)) {
        crossed[[d]] <- crossed[[d]] | az >= bounds[[d]][j]
        counts[d, j] <- counts[d, j] + sum(crossed[[d]])
      }
    }
  }
  counts
}

# ---- the designs -----------------------------------------------------------------------------
designs <- list()
add_t <- function(name, t) designs[[length(designs) + 1]] <<- list(name = name, t = rt(t))
for (K in c(1, 2, 3, 5, 10, 12, 20)) add_t(sprintf("equal_K%d", K), (1:K) / K)
add_t("unequal_K4", c(0.2, 0.5, 0.6, 1))
add_t("partial_K3_tK0.75", c(0.25, 0.5, 0.75))

rows <- character(0)
for (d in designs) {
  cases <- list()
  for (spending in c("pocock", "obrien_fleming")) for (alpha in c(0.01, 0.05)) {
    cases[[length(cases) + 1]] <- list(
      name = sprintf("%s_%s_a%s", d$name, spending, num(alpha)), spending = spending,
      alpha = alpha, spent = spent(spending, alpha, d$t),
      integ = bounds_integrate(spending, alpha, d$t), grid = bounds_grid(spending, alpha, d$t))
  }
  counts <- monte_carlo(d$t, lapply(cases, function(k) k$grid))
  for (i in seq_along(cases)) {
    k <- cases[[i]]
    p <- counts[i, ] / kPaths
    rows <- c(rows, paste(k$name, k$spending, num(k$alpha), sample_field(d$t), sample_field(k$spent),
                          sample_field(k$integ), sample_field(k$grid), sample_field(p),
                          sample_field(sqrt(p * (1 - p) / kPaths)), num(kPaths), sep = ","))
  }
  cat(sprintf("%s: done\n", d$name))
}

writeLines(c(sprintf(paste("# Generated by tests/data/stats/make_reference_sequential.R with %s;",
                           "do not edit by hand."), R.version.string),
             paste0("case,spending,alpha,t,spent,bounds_integrate,bounds_grid,",
                    "cumulative_crossing_mc,mc_se,mc_paths"),
             rows),
           file.path(out_dir, "sequential_reference.csv"))
cat(sprintf("wrote %d designs to %s\n", length(rows), out_dir))
