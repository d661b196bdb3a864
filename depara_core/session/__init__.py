"""What the app needs beyond the library, importable and testable without a UI toolkit: the
sidebar's choices (:mod:`.config`), zoo defaults (:mod:`.zoos`), uploads and server paths
(:mod:`.uploads`), progress (:mod:`.progress`), a session's results (:mod:`.workspace`) and the
exported report (:mod:`.report`)."""
