"""A small, dependency-free "trainer" used to demonstrate ttfb-lab.

Its start-up has the phases of a real training job -- imports, config validation,
data preprocessing, model initialisation -- scaled down so that the whole start-up
takes about a tenth of a second with the --tiny preset.
"""

__version__ = "0.9.0"
