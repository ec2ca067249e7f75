# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Percent script
#
# Prose in a percent script.

# %%
import os
with open(os.environ["NBCACHE_TEST_LOG"], "a") as log:
    log.write("nb_percent\n")

# %%
print("percent says", 3 * 3)
