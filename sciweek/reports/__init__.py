"""Reports handed upward: the annual assessment (年度目标考核) on screen, as XLSX and as PDF."""
