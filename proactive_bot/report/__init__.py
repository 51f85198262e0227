"""What an operator reads of the notifications: the recent ones, a notification's recipients page
by page, the CSV delivery report, and the status page that shows them.

- cursors: a table continuation as an opaque URL-safe token.
- recipients: one page of a notification's rows, filtered by state (never all rows at once).
- export: the CSV report, written page by page.
- recent: the notifications recorded lately, newest first.
- endpoints: the HTTP answers (JSON, CSV) the front door returns.
- page: the status page's static files and its error pages.
"""
