from tests.browser import browser  # noqa: F401  (the shared Chromium, for test_browser.py)
