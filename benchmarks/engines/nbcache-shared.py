# sphinx-nbcache on a shared store: PostgreSQL + S3 (benchmarks/scale_out.py starts both on
# 127.0.0.1 and sets NBCACHE_BENCH_DATABASE / NBCACHE_BENCH_BLOBS / NBCACHE_BENCH_BLOBS_OPTIONS).
# Cold scenarios delete only the local folder: run it once per fresh database (scale_out.py).
import json as _json

extensions = ["myst_nb", "sphinx_nbcache"]
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 300
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nbcache_database = os.environ["NBCACHE_BENCH_DATABASE"]
nbcache_blobs = os.environ["NBCACHE_BENCH_BLOBS"]
nbcache_blobs_options = _json.loads(os.environ["NBCACHE_BENCH_BLOBS_OPTIONS"])

bench_cache_dirs = [".nbcache"]
bench_exec_regex = r"nbcache: ran "
