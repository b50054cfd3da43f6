DROP INDEX orders_partner;
DROP INDEX orders_customer;
ALTER TABLE orders DROP COLUMN partner_id;
ALTER TABLE orders DROP COLUMN customer_id;
