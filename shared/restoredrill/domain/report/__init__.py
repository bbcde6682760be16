"""The drill report's parts: its model (:mod:`.model`), the document built from a run
(:mod:`.document`), where it is stored (:mod:`.location`), its shipped JSON Schema
(:mod:`.schema`), its HTML page (:mod:`.html`), the Drill Finished event built from the same run
(:mod:`.finished_event`), and how evidence, names and durations read for people (:mod:`.evidence`,
:mod:`.text`)."""
