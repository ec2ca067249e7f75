-- The exact layout of a schema-2 cache database (sphinx-nbcache 0.1.0, 2026-12-01),
-- to test migrations from it.
PRAGMA journal_mode=WAL;
CREATE TABLE meta (
	name VARCHAR NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE pages (
	page VARCHAR NOT NULL, 
	"key" VARCHAR(64) NOT NULL, 
	updated FLOAT NOT NULL, 
	PRIMARY KEY (page)
);
CREATE INDEX ix_pages_key ON pages ("key");
CREATE TABLE results (
	"key" VARCHAR(64) NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	blob VARCHAR(64), 
	size INTEGER NOT NULL, 
	runtime FLOAT NOT NULL, 
	cell_times TEXT NOT NULL, 
	kernel VARCHAR NOT NULL, 
	timeout FLOAT, 
	failure TEXT, 
	page VARCHAR NOT NULL, 
	created FLOAT NOT NULL, 
	last_used FLOAT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE INDEX ix_results_last_used ON results (last_used);
CREATE TABLE sources (
	digest VARCHAR(64) NOT NULL, 
	"key" VARCHAR(64) NOT NULL, 
	mode VARCHAR(8) NOT NULL, 
	has_outputs INTEGER NOT NULL, 
	timeout FLOAT, 
	used FLOAT NOT NULL, 
	PRIMARY KEY (digest)
);
CREATE INDEX ix_sources_used ON sources (used);
INSERT INTO meta (name, value) VALUES ('schema_version', '2');
