-- Customers and partners (SPEC 10): whose order it is, and who placed it. Either may be absent.
ALTER TABLE orders ADD COLUMN customer_id TEXT;
ALTER TABLE orders ADD COLUMN partner_id TEXT;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_partner ON orders (partner_id);
