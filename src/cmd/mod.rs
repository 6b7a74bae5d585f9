pub mod mine;
pub mod mine_image;
pub mod run;
