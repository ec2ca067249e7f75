# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.16.0
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A percent script (`.py`)
#
# A plain Python file with `# %%` cell markers, read through jupytext
# (`nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}`).

# %%
import math

print(f"pi is about {math.pi:.5f}")

# %% [markdown]
# A returned value:

# %%
[round(math.sqrt(n), 3) for n in range(1, 6)]

# %% [markdown]
# An HTML display:

# %%
from IPython.display import HTML

HTML(f"<p style='font-family: monospace'>e = {math.e:.6f}</p>")
