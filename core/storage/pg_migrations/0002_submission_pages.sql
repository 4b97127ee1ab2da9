-- Keyset paging of one form's submissions (Store.page_submissions: OData and the Central API), both ways.
CREATE INDEX submissions_page ON submissions (form_id, received_at, instance_id COLLATE "C");
