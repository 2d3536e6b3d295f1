// Spate console: the few things plain HTML does not do.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A search in progress says so, and is not sent twice.
  const form = document.getElementById("search-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = document.getElementById("run-search");
      button.disabled = true;
      button.textContent = "Searching…";
    });
    // Ctrl+Enter in the SQL box runs the search.
    const sql = document.getElementById("sql");
    sql.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
  }
});
