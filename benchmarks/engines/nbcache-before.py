# sphinx-nbcache as it was before the thread caps and the autoscaler's look at the kernels'
# own CPU use (commit 4b76c77): no caps, and one more place whenever three quarters of a CPU
# sat idle, whatever the executing kernels did. For side-by-side runs only: the old rule is
# put back by wrapping Autoscale.decide (it ignores kernels_idle), in the build's process.
from sphinx_nbcache.execute import _autoscale as _autoscale

_decide = _autoscale.Autoscale.decide


def _decide_before(self, *args, kernels_idle, **kwargs):
    return _decide(self, *args, kernels_idle=float("inf"), **kwargs)


_autoscale.Autoscale.decide = _decide_before

extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_kernel_threads = 0  # no caps, as before

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
