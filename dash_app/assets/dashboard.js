/* The dashboard's clientside functions: each panel's CSV, written from the rows the
   panel shows (its store), as the browser downloads it. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  wiki: {
    csv: function (clicks, rows) {
      if (!clicks || !rows || !rows.columns) {
        return window.dash_clientside.no_update;
      }
      const cell = function (value) {
        if (value === null || value === undefined) {
          return "";
        }
        let text = String(value);
        // a text that a spreadsheet would run as a formula is kept as text
        if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) {
          text = "'" + text;
        }
        return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
      };
      const lines = [rows.columns.map(cell).join(",")];
      for (const row of rows.rows) {
        lines.push(row.map(cell).join(","));
      }
      return {content: lines.join("\r\n") + "\r\n", filename: rows.filename, type: "text/csv", base64: false};
    },
  },
});
