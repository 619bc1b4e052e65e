"""Reports: the pytest plugin that turns scenario runs into Allure results and out/summary.json, the TTR
charts, `resilience report` (the HTML report, pinned Allure 3) and `resilience gate` (the release gate)."""
