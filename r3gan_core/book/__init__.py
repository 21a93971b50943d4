"""The book layer: what the chapters and ci/run_chapters.py use, and nothing in the library imports.

  chapter       start (settings, provenance, stored results), train-or-load, finish (metrics, generators)
  profiles      the smoke / cpu / gpu / paper settings of every chapter
  experiments   train-and-evaluate drivers: runs in resumable folders, several side by side
  comparisons   verdicts against the paper's tables, each by a stated rule
  biggan_study  the BigGAN chapter's runs, truncation sweep and spectra
  plotting      figures with provenance footers
  explorables   interactive views for the rendered pages (Bokeh; every state computed here, looked up there)
  paper         the paper's tables as data

    from r3gan_core.book import chapter, experiments
"""
